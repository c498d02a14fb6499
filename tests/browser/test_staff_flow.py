"""Staff in a real browser: sign in by typing email and password, search the subscriber
list, open one subscriber's page."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect
from sqlalchemy.orm import Session

from tests.browser.support import axe, format_violations
from tests.helpers.live_server import LiveServer
from tests.staff.factories import DEFAULT_PASSWORD, make_staff
from tests.subscribers.factories import make_subscriber


def _row_emails(page: Any) -> list[str]:
    """The addresses in the subscriber table, top to bottom."""
    cells = page.locator("table.data tbody td:first-child a")
    return [text.strip() for text in cells.all_inner_texts()]


def test_editor_signs_in_and_finds_subscribers_by_prefix(
    page: Any, live_server: LiveServer, db_session: Session
) -> None:
    make_staff(db_session, role="editor", email="editor@test.example")
    make_subscriber(db_session, email="anna.petrova@example.com", name="Anna Petrova")
    make_subscriber(db_session, email="annette@example.org", status="pending", language="ru")
    make_subscriber(db_session, email="boris@example.com", name="Boris Anna")
    make_subscriber(db_session, email="vera@example.net", name="Vera", status="unsubscribed")
    db_session.commit()

    # The list is closed to anonymous visitors: the browser lands on the sign-in page.
    page.goto("/staff/subscribers/")
    expect(page).to_have_url(re.compile(r"/staff/login"))
    page.get_by_label("Email", exact=True).fill("editor@test.example")
    page.get_by_label("Password", exact=True).fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    # Signed in, the browser is taken back to the page it asked for.
    expect(page).to_have_url(re.compile(r"/staff/subscribers/?$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Subscribers")
    expect(page.locator(".staff-bar__me")).to_contain_text("editor@test.example")
    assert sorted(_row_emails(page)) == [
        "anna.petrova@example.com",
        "annette@example.org",
        "boris@example.com",
        "vera@example.net",
    ]

    # A prefix of the address finds those rows and no others.
    # (The search form is the page's search landmark; the export form has its own "Status".)
    filters = page.get_by_role("search")
    search = filters.get_by_role("searchbox", name="Search")
    search.fill("ann")
    search.press("Enter")
    expect(page).to_have_url(re.compile(r"[?&]q=ann(&|$)"))
    expect(page.locator("#result-count")).to_contain_text("2")
    assert sorted(_row_emails(page)) == ["anna.petrova@example.com", "annette@example.org"]
    expect(search).to_have_value("ann")

    # The search button and a filter work together: only the pending one is left.
    filters.get_by_label("Status", exact=True).select_option("pending")
    filters.get_by_role("button", name="Search", exact=True).click()
    expect(page).to_have_url(re.compile(r"status=pending"))
    expect(page.locator("#result-count")).to_contain_text("1")
    assert _row_emails(page) == ["annette@example.org"]

    # A search that matches nobody says so.
    search = filters.get_by_role("searchbox", name="Search")
    search.fill("zzz")
    search.press("Enter")
    expect(page.locator("table.data tbody")).to_contain_text("No subscribers match.")
    assert _row_emails(page) == []

    # One subscriber's page.
    search.fill("anna.p")
    filters.get_by_label("Status", exact=True).select_option("")
    search.press("Enter")
    page.get_by_role("link", name="anna.petrova@example.com").click()
    expect(page).to_have_url(re.compile(r"/staff/subscribers/\d+"))
    expect(page.get_by_role("heading", level=1)).to_have_text("anna.petrova@example.com")
    expect(page.locator("dl.facts")).to_contain_text("Anna Petrova")
    expect(page.locator("dl.facts")).to_contain_text("Confirmed")
    violations = axe(page)
    assert violations == [], format_violations(violations)


def test_wrong_password_keeps_the_editor_out(
    page: Any, live_server: LiveServer, db_session: Session
) -> None:
    make_staff(db_session, role="editor", email="editor@test.example")
    db_session.commit()

    page.goto("/staff/login")
    page.get_by_label("Email", exact=True).fill("editor@test.example")
    page.get_by_label("Password", exact=True).fill("not the password")
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("alert")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/staff/login"))
    response = page.goto("/staff/subscribers/")
    assert response is not None
    expect(page).to_have_url(re.compile(r"/staff/login"))
