"""Whole payments through the Stripe emulator: the real SDK opens Checkout, the emulator
plays the donor paying and sends signed webhooks to the app served over HTTP, whose real
endpoint verifies and applies them. Reconciliation applies what the webhook missed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.donations.factories import make_donation, make_donor
from tests.helpers.live_server import LiveServer
from tests.helpers.smtp import SmtpSink
from tests.helpers.stripe_emulator import StripeEmulator
from webapp.cli import main
from webapp.donations.gateway import CheckoutRequest, StripeApiGateway
from webapp.donations.models import (
    Donation,
    DonationKind,
    DonationStatus,
    Frequency,
    Plan,
    PlanStatus,
    StripeEvent,
)

SECRET = "whsec_emulator_flow_secret"


@pytest.fixture
def app_config(app_config: dict[str, Any], stripe_emulator: StripeEmulator) -> dict[str, Any]:
    app_config["STRIPE_SECRET_KEY"] = stripe_emulator.api_key
    app_config["STRIPE_API_BASE"] = stripe_emulator.api_base
    app_config["STRIPE_WEBHOOK_SECRET"] = SECRET
    return app_config


@pytest.fixture
def webhook(stripe_emulator: StripeEmulator, live_server: LiveServer) -> Iterator[str]:
    """The emulator sends its events to the live app for this test."""
    webhook_id = stripe_emulator.register_webhook(f"{live_server.url}/stripe/webhook", SECRET)
    yield webhook_id
    stripe_emulator.unregister_webhook(webhook_id)


def open_checkout(
    db_session: Session,
    gateway: StripeApiGateway,
    *,
    frequency: Frequency,
    amount: int,
    email: str,
) -> tuple[Donation, dict[str, Any]]:
    """What the donation page does: a donor, a pending gift, a Checkout Session."""
    donor = make_donor(db_session, email=email, name="Flow Donor")
    donor.stripe_customer_id = gateway.find_or_create_customer(email, "Flow Donor", f"c-{email}")
    donation = make_donation(
        db_session,
        donor=donor,
        status=DonationStatus.PENDING,
        frequency=frequency,
        kind=DonationKind.RECURRING if frequency.is_recurring else DonationKind.ONE_TIME,
        amount_minor=amount,
        currency="EUR",
    )
    checkout = gateway.create_checkout_session(
        CheckoutRequest(
            mode="subscription" if frequency.is_recurring else "payment",
            customer_id=donor.stripe_customer_id,
            amount_minor=amount,
            currency="EUR",
            interval=frequency.value if frequency.is_recurring else None,
            product_name="Gift to The Test Review",
            description="Gift",
            success_url="http://localhost/donate/thanks?session_id={CHECKOUT_SESSION_ID}",
            cancel_url="http://localhost/donate",
            locale="en",
            metadata={"donation_id": str(donation.id)},
        ),
        idempotency_key=f"checkout-{donation.id}-{time.time_ns()}",
    )
    donation.stripe_checkout_session_id = checkout["id"]
    db_session.commit()
    return donation, checkout


def wait_until(check: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def status_of(db_session: Session, donation_id: int) -> DonationStatus:
    db_session.expire_all()
    donation = db_session.get(Donation, donation_id)
    assert donation is not None
    return DonationStatus(donation.status)


def test_a_one_time_gift_paid_through_the_emulator(
    app: Flask,
    db_session: Session,
    stripe_emulator: StripeEmulator,
    webhook: str,
    smtp_sink: SmtpSink,
) -> None:
    gateway = app.extensions["stripe_gateway"]
    donation, checkout = open_checkout(
        db_session, gateway, frequency=Frequency.ONE_TIME, amount=2500, email="one@example.com"
    )
    paid = stripe_emulator.pay(checkout["url"])
    assert paid.status == 303 and checkout["id"] in (paid.location or "")
    wait_until(lambda: status_of(db_session, donation.id) == DonationStatus.PAID)
    db_session.expire_all()
    row = db_session.get(Donation, donation.id)
    assert row is not None and row.stripe_payment_intent_id
    receipt = smtp_sink.wait_for(1)[0]
    assert receipt.rcpt_tos == ["one@example.com"] and "€25" in receipt.part("text/plain")


def test_a_monthly_gift_counts_its_first_payment_once(
    app: Flask,
    db_session: Session,
    stripe_emulator: StripeEmulator,
    webhook: str,
    smtp_sink: SmtpSink,
) -> None:
    gateway = app.extensions["stripe_gateway"]
    donation, checkout = open_checkout(
        db_session, gateway, frequency=Frequency.MONTHLY, amount=900, email="monthly@example.com"
    )
    assert stripe_emulator.pay(checkout["url"]).status == 303
    wait_until(lambda: status_of(db_session, donation.id) == DonationStatus.PAID)
    # Every event the emulator sent (checkout completed, subscription created, invoice paid...)
    wait_until(
        lambda: all(
            d.get("status")
            for d in stripe_emulator.deliveries()
            if d.get("url", "").endswith("/stripe/webhook")
        )
    )
    time.sleep(0.3)
    db_session.expire_all()
    payments = db_session.scalars(select(Donation).where(Donation.status == "paid")).all()
    assert len(payments) == 1
    plan = db_session.scalars(select(Plan)).one()
    assert plan.status == PlanStatus.ACTIVE and plan.amount_minor == 900
    assert payments[0].plan_id == plan.id
    smtp_sink.wait_for(1)
    time.sleep(0.2)
    assert [m.rcpt_tos for m in smtp_sink.messages] == [["monthly@example.com"]]


def test_reconciliation_applies_what_the_webhook_missed_once(
    app: Flask,
    db_session: Session,
    stripe_emulator: StripeEmulator,
    runner: FlaskCliRunner,
    smtp_sink: SmtpSink,
) -> None:
    gateway = app.extensions["stripe_gateway"]
    donation, checkout = open_checkout(
        db_session, gateway, frequency=Frequency.ONE_TIME, amount=1500, email="late@example.com"
    )
    assert stripe_emulator.pay(checkout["url"]).status == 303  # no webhook registered
    assert status_of(db_session, donation.id) == DonationStatus.PENDING

    result = runner.invoke(main, ["jobs", "run", "reconcile-stripe"])
    assert result.exit_code == 0, result.output
    assert status_of(db_session, donation.id) == DonationStatus.PAID
    smtp_sink.wait_for(1)
    applied = db_session.scalars(select(StripeEvent).where(StripeEvent.via == "reconcile")).all()
    assert "checkout.session.completed" in {event.type for event in applied}

    again = runner.invoke(main, ["jobs", "run", "reconcile-stripe"])
    assert again.exit_code == 0 and " 0 applied" in again.output
    time.sleep(0.2)
    # (Other tests' payments are in the emulator's event list too; they are not ours here.)
    assert [m.rcpt_tos for m in smtp_sink.messages] == [["late@example.com"]]
