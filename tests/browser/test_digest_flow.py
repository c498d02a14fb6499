"""An editor in a real browser: opens a built issue, sees the desktop and phone previews,
switches to the donor view, approves, and watches the live progress count the sending."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from tests.browser.support import axe, format_violations
from tests.digests.factories import build, week_of_articles
from tests.helpers.live_server import LiveServer
from tests.helpers.smtp import SmtpSink
from tests.staff.factories import DEFAULT_PASSWORD, make_staff
from tests.subscribers.factories import make_subscriber
from webapp.core.clock import FrozenClock
from webapp.db import get_database
from webapp.digests.services import Worker
from webapp.outbox.gateway import get_mailer


def test_preview_approve_and_watch_progress(
    page: Any,
    live_server: LiveServer,
    app: Flask,
    db_session: Session,
    clock: FrozenClock,
    smtp_sink: SmtpSink,
) -> None:
    make_staff(db_session, role="editor", email="editor@test.example")
    week_of_articles(db_session, clock.now())
    for n in range(4):
        make_subscriber(db_session, name=f"Reader {n}")
    db_session.commit()
    issue_id = build(app, db_session, clock)[0]

    page.goto(f"/staff/digests/{issue_id}")
    page.get_by_label("Email", exact=True).fill("editor@test.example")
    page.get_by_label("Password", exact=True).fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(rf"/staff/digests/{issue_id}$"))

    # Both previews show the issue; the reader view asks for support.
    desktop = page.frame_locator("iframe.preview--desktop")
    phone = page.frame_locator("iframe.preview--phone")
    expect(desktop.get_by_text("Most read this week")).to_be_visible()
    expect(phone.get_by_text("Most read this week")).to_be_visible()
    expect(desktop.get_by_text("Support us")).to_be_visible()
    box = page.locator("iframe.preview--phone").bounding_box()
    assert box is not None and box["width"] < 400
    page.get_by_role("link", name="As a donor").click()
    expect(
        page.frame_locator("iframe.preview--desktop").get_by_text("Thank you for supporting")
    ).to_be_visible()
    violations = axe(page)
    assert not violations, format_violations(violations)

    page.get_by_role("button", name="Approve and send").click()
    panel = page.locator("#progress")
    expect(panel).to_be_visible()
    expect(panel.locator('[data-field="left"]')).to_have_text("4")

    # A worker sends while the page is open: the counters move without a reload.
    Worker(get_database(app), get_mailer(app), secret=app.config["SECRET_KEY"], now=clock.now).run()
    expect(panel.locator('[data-field="sent"]')).to_have_text("4", timeout=10_000)
    expect(panel.locator('[data-field="left"]')).to_have_text("0")
    expect(page.locator("#issue-status")).to_have_text("sent")
    assert len(smtp_sink.messages) == 4
