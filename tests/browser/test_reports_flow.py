"""A fundraiser in a real browser: the dashboard draws its charts (Chart.js served by the app,
under the Content-Security-Policy), every report opens with its chart and table, and a CSV
downloads."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

from playwright.sync_api import expect
from sqlalchemy.orm import Session

from tests.browser.support import axe, format_violations
from tests.helpers.live_server import LiveServer
from tests.reports import dataset
from tests.staff.factories import DEFAULT_PASSWORD, make_staff
from webapp.core.clock import FrozenClock
from webapp.reports.tables import REPORTS


def test_dashboard_reports_and_a_csv_download(
    page: Any, live_server: LiveServer, db_session: Session, clock: FrozenClock
) -> None:
    clock.current = dataset.NOW
    dataset.load(db_session)
    make_staff(db_session, role="fundraiser", email="fund@test.example")
    db_session.commit()
    errors: list[str] = []
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )

    page.goto("/staff/")
    page.get_by_label("Email", exact=True).fill("fund@test.example")
    page.get_by_label("Password", exact=True).fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("How reader support is doing")
    expect(page.locator("#figure-active_donors .tile__value")).to_have_text("3")
    # Chart.js drew into the canvases (a drawn canvas has Chart.js' attributes set).
    expect(page.locator("#figure-mrr canvas")).to_have_attribute("style", re.compile("height"))
    violations = axe(page)
    assert not violations, format_violations(violations)

    for report in REPORTS:
        page.goto(f"/staff/reports/{report.slug}?from=2026-07&to=2026-11")
        expect(page.get_by_role("heading", level=1)).to_have_text(str(report.title))
        expect(page.locator("#report-table")).to_be_visible()
    assert not [e for e in errors if "Content Security Policy" in e], errors

    page.goto("/staff/reports/revenue?from=2026-10&to=2026-11")
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download CSV").click()
    download = download_info.value
    assert download.suggested_filename == "readership-revenue-2026-10-2026-11.csv"
    content = Path(download.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(content)))
    assert rows[-1] == ["2026-11", "10.00", "70.00", "48.00", "128.00"]
