"""The pages issue 11 added or changed, in a real browser: the staff list of Stripe events
with a parked one, and the donation form asking which amount was meant."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from playwright.sync_api import expect
from sqlalchemy.orm import Session

from tests.browser.support import ARTIFACTS_DIR, axe, format_violations
from tests.helpers.live_server import LiveServer
from tests.staff.factories import DEFAULT_PASSWORD, make_staff
from webapp.donations.models import StripeEvent, StripeEventWait


def test_staff_see_parked_stripe_events(
    page: Any, live_server: LiveServer, db_session: Session
) -> None:
    make_staff(db_session, role="fundraiser", email="funds@test.example")
    when = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    db_session.add_all(
        [
            StripeEvent(
                id="evt_applied",
                type="checkout.session.completed",
                created_at=when,
                received_at=when,
                outcome="donation 1 paid",
            ),
            StripeEvent(
                id="evt_waiting",
                type="charge.refunded",
                created_at=when,
                received_at=when,
                outcome="parked: payment not recorded yet",
                parked=True,
                payload={"id": "ch_1"},
            ),
        ]
    )
    db_session.flush()
    db_session.add(StripeEventWait(event_id="evt_waiting", key="pi:pi_1"))
    db_session.commit()
    page.goto("/staff/login")
    page.get_by_label("Email", exact=True).fill("funds@test.example")
    page.get_by_label("Password", exact=True).fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto("/staff/donations/events")
    expect(page.locator("table.data")).to_contain_text("evt_applied")
    page.get_by_role("link", name="Parked (1)").click()
    expect(page.locator("table.data")).to_contain_text("payment not recorded yet")
    expect(page.locator("table.data")).not_to_contain_text("evt_applied")
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS_DIR / "staff-stripe-events.png"), full_page=True)
    violations = axe(page)
    assert violations == [], format_violations(violations)


def test_an_amount_that_reads_two_ways_is_asked_about_in_russian(
    page: Any, live_server: LiveServer
) -> None:
    page.goto("/ru/donate")
    page.locator("input[name=amount][value=other]").check()
    page.locator("#custom_amount").fill("2,500")
    page.locator("#email").fill("reader@example.com")
    page.get_by_role("button", name="Перейти к оплате").click()
    expect(page.locator(".errors")).to_contain_text("Вы имели в виду")
    expect(page.locator(".errors")).to_contain_text("2,50")
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS_DIR / "donate-ru-ambiguous.png"), full_page=True)
    violations = axe(page)
    assert violations == [], format_violations(violations)
