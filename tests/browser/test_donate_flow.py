"""A reader gives in Russian in a real browser: the donation page, the emulator's Checkout
page (the real SDK made it), back to the thank-you page, and the receipt in the SMTP sink.
The emulator's webhooks reach the live app's real endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.browser.support import ARTIFACTS_DIR, axe, format_violations
from tests.helpers.live_server import LiveServer
from tests.helpers.smtp import SmtpSink
from tests.helpers.stripe_emulator import StripeEmulator
from webapp.donations.models import Donation, DonationStatus, Plan, PlanStatus

SECRET = "whsec_browser_flow"


@pytest.fixture
def app_config(app_config: dict[str, Any], stripe_emulator: StripeEmulator) -> dict[str, Any]:
    app_config["STRIPE_SECRET_KEY"] = stripe_emulator.api_key
    app_config["STRIPE_API_BASE"] = stripe_emulator.api_base
    app_config["STRIPE_WEBHOOK_SECRET"] = SECRET
    return app_config


@pytest.fixture
def webhook(stripe_emulator: StripeEmulator, live_server: LiveServer) -> Iterator[None]:
    webhook_id = stripe_emulator.register_webhook(f"{live_server.url}/stripe/webhook", SECRET)
    yield
    stripe_emulator.unregister_webhook(webhook_id)


def give(page: Any, *, frequency: str, amount_label: str, email: str) -> None:
    page.goto("/ru/donate")
    assert page.locator("html").get_attribute("lang") == "ru"
    page.locator(f"input[name=frequency][value={frequency}]").check()
    page.locator("input[name=currency][value=EUR]").check()
    page.locator(".preset", has_text=amount_label).locator("input").check()
    page.fill("#email", email)
    page.fill("#name", "Анна")
    page.locator("button.donate-button").click()
    page.wait_for_url("**/_checkout/**")
    page.locator("#pay").click()
    page.wait_for_url("**/ru/donate/thanks?session_id=*")


def test_a_one_time_gift_in_russian(
    app: Flask,
    page: Any,
    live_server: LiveServer,
    webhook: None,
    db_session: Session,
    smtp_sink: SmtpSink,
) -> None:
    give(page, frequency="one_time", amount_label="25", email="anna@example.com")
    expect(page.locator("h1")).to_contain_text("Спасибо, Анна!")
    expect(page.locator("main")).to_contain_text("25")
    receipt = smtp_sink.wait_for(1)[0]
    assert receipt.rcpt_tos == ["anna@example.com"]
    assert "Спасибо" in receipt.subject
    db_session.expire_all()
    donation = db_session.scalars(select(Donation)).one()
    assert donation.status == DonationStatus.PAID and donation.language == "ru"


def test_a_monthly_gift_in_russian(
    app: Flask,
    page: Any,
    live_server: LiveServer,
    webhook: None,
    db_session: Session,
    smtp_sink: SmtpSink,
) -> None:
    give(page, frequency="monthly", amount_label="10", email="boris@example.com")
    expect(page.locator("h1")).to_contain_text("Спасибо")
    expect(page.locator("main")).to_contain_text("ежемесячное")
    receipt = smtp_sink.wait_for(1)[0]
    assert receipt.rcpt_tos == ["boris@example.com"]
    assert "/ru/donate/manage" in receipt.part("text/plain")
    db_session.expire_all()
    plan = db_session.scalars(select(Plan)).one()
    assert plan.status == PlanStatus.ACTIVE and plan.amount_minor == 1000


def test_presets_follow_the_currency_and_the_fee_is_shown(
    page: Any, live_server: LiveServer
) -> None:
    page.goto("/donate")
    expect(page.locator("#custom_amount-hint")).to_contain_text("Between €1 and €10,000.")
    page.locator("input[name=frequency][value=monthly]").check()
    page.locator("input[name=currency][value=USD]").check()
    expect(page.locator("#preset-list")).to_contain_text("$5")
    # The hints follow the currency too.
    expect(page.locator("#custom_amount-hint")).to_contain_text("Between $1 and $10,000.")
    expect(page.locator("#fee-hint-text")).to_contain_text("$0.25")
    page.locator(".preset", has_text="$20").locator("input").check()
    page.locator("#cover_fee").check()
    expect(page.locator("#fee-output")).to_contain_text("$20.56")
    # Thousands typed the English way are thousands in the preview as on the server.
    page.locator("#custom_amount").fill("2,500")
    expect(page.locator("#fee-output")).to_contain_text("= $2,538.33")
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS_DIR / "donate-usd-hints.png"), full_page=True)
    violations = axe(page)
    assert violations == [], format_violations(violations)
