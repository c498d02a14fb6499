"""Donor self-service without a password, and yearly statements, against the emulator."""

from __future__ import annotations

import email.policy
import time
from datetime import UTC, datetime
from email.parser import BytesParser
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.donations.factories import make_donation, make_donor, make_plan
from tests.helpers.html import csrf_token, first_url_containing
from tests.helpers.smtp import SmtpSink
from tests.helpers.stripe_emulator import StripeEmulator
from tests.subscribers.factories import path_of
from webapp.cli import main
from webapp.core.clock import FrozenClock
from webapp.donations.models import DonorStatement, Frequency, Plan, PlanStatus


@pytest.fixture
def app_config(app_config: dict[str, Any], stripe_emulator: StripeEmulator) -> dict[str, Any]:
    app_config["STRIPE_SECRET_KEY"] = stripe_emulator.api_key
    app_config["STRIPE_API_BASE"] = stripe_emulator.api_base
    return app_config


def ask_for_link(client: FlaskClient, email: str, lang: str = "en") -> Any:
    page = client.get(f"/{lang}/donate/manage")
    return client.post(
        f"/{lang}/donate/manage", data={"csrf_token": csrf_token(page.text), "email": email}
    )


def link_from(sink: SmtpSink, count: int = 1) -> str:
    message = sink.wait_for(count)[-1]
    return path_of(first_url_containing(message.part("text/plain"), "/donate/manage/"))


def test_the_answer_is_the_same_for_known_and_unknown_addresses(
    client: FlaskClient, db_session: Session, smtp_sink: SmtpSink
) -> None:
    make_donor(db_session, email="known@example.com")
    db_session.commit()
    known = ask_for_link(client, "known@example.com")
    unknown = ask_for_link(client, "stranger@example.com")
    assert known.status_code == unknown.status_code == 200
    assert known.text == unknown.text
    smtp_sink.wait_for(1)
    time.sleep(0.2)
    assert [m.rcpt_tos for m in smtp_sink.messages] == [["known@example.com"]]
    # Asked again at once: the same page, no second email.
    assert ask_for_link(client, "KNOWN@example.com").text == known.text
    time.sleep(0.2)
    assert len(smtp_sink.messages) == 1
    assert ask_for_link(client, "not an email").status_code == 400


def test_the_link_opens_the_gifts_and_expires(
    client: FlaskClient, db_session: Session, smtp_sink: SmtpSink, clock: FrozenClock
) -> None:
    donor = make_donor(db_session, email="giver@example.com", language="ru")
    make_donation(db_session, donor=donor, amount_minor=4200, paid_at=clock.now())
    db_session.commit()
    ask_for_link(client, "giver@example.com", lang="ru")
    link = link_from(smtp_sink)
    assert link.startswith("/ru/donate/manage/")
    page = client.get(link)
    assert page.status_code == 200 and "R-" in page.text and "42" in page.text
    assert client.get(link[:-3] + "xyz").status_code == 400
    clock.advance(hours=73)
    assert client.get(link).status_code == 410


def subscribed_plan(
    db_session: Session, emulator: StripeEmulator, email: str, amount: int = 1000
) -> Plan:
    """A real subscription in the emulator (paid through its Checkout) and our plan row."""
    stripe = emulator.client()
    customer = stripe.v1.customers.create({"email": email})
    checkout = stripe.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "customer": customer.id,
            "line_items": [
                {
                    "price_data": {
                        "currency": "eur",
                        "unit_amount": amount,
                        "product_data": {"name": "Monthly gift"},
                        "recurring": {"interval": "month"},
                    },
                    "quantity": 1,
                }
            ],
            "success_url": "http://localhost/ok?session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": "http://localhost/no",
        }
    )
    assert emulator.pay(checkout.url).status == 303
    subscription_id = stripe.v1.checkout.sessions.retrieve(checkout.id).subscription
    donor = make_donor(db_session, email=email, stripe_customer_id=customer.id)
    plan = make_plan(
        db_session, donor=donor, amount_minor=amount, stripe_subscription_id=str(subscription_id)
    )
    db_session.commit()
    return plan


def open_manage_page(client: FlaskClient, smtp_sink: SmtpSink, email: str) -> tuple[str, str]:
    ask_for_link(client, email)
    link = link_from(smtp_sink)
    return link, client.get(link).text


def test_changing_the_amount_updates_stripe_the_plan_and_tells_the_donor(
    client: FlaskClient,
    db_session: Session,
    smtp_sink: SmtpSink,
    stripe_emulator: StripeEmulator,
) -> None:
    plan = subscribed_plan(db_session, stripe_emulator, "change@example.com")
    link, page = open_manage_page(client, smtp_sink, "change@example.com")
    response = client.post(
        f"{link}/plans/{plan.id}/amount", data={"csrf_token": csrf_token(page), "amount": "15"}
    )
    assert response.status_code == 303
    db_session.expire_all()
    assert db_session.get(Plan, plan.id).amount_minor == 1500
    subscription = stripe_emulator.client().v1.subscriptions.retrieve(plan.stripe_subscription_id)
    item = subscription.items.data[0]
    price = getattr(item, "price", None) or item.plan
    assert (getattr(price, "unit_amount", None) or price.amount) == 1500
    message = smtp_sink.wait_for(2)[-1]
    assert "updated" in message.subject
    for bad in ("abc", "0.10", "99999999"):
        client.post(
            f"{link}/plans/{plan.id}/amount", data={"csrf_token": csrf_token(page), "amount": bad}
        )
    db_session.expire_all()
    assert db_session.get(Plan, plan.id).amount_minor == 1500


def test_cancelling_ends_the_subscription_at_stripe_and_here(
    client: FlaskClient,
    db_session: Session,
    smtp_sink: SmtpSink,
    stripe_emulator: StripeEmulator,
) -> None:
    plan = subscribed_plan(db_session, stripe_emulator, "stop@example.com")
    link, page = open_manage_page(client, smtp_sink, "stop@example.com")
    assert (
        client.post(
            f"{link}/plans/{plan.id}/cancel", data={"csrf_token": csrf_token(page)}
        ).status_code
        == 303
    )
    db_session.expire_all()
    assert db_session.get(Plan, plan.id).status == PlanStatus.CANCELED
    subscription = stripe_emulator.client().v1.subscriptions.retrieve(plan.stripe_subscription_id)
    assert subscription.status == "canceled"
    assert "cancelled" in smtp_sink.wait_for(2)[-1].subject


def test_the_billing_portal_and_other_peoples_plans(
    client: FlaskClient,
    db_session: Session,
    smtp_sink: SmtpSink,
    stripe_emulator: StripeEmulator,
) -> None:
    plan = subscribed_plan(db_session, stripe_emulator, "card@example.com")
    stranger = make_donor(db_session, email="other@example.com")
    other_plan = make_plan(db_session, donor=stranger)
    db_session.commit()
    link, page = open_manage_page(client, smtp_sink, "card@example.com")
    portal = client.post(f"{link}/portal", data={"csrf_token": csrf_token(page)})
    assert portal.status_code == 303
    assert portal.headers["Location"].startswith(stripe_emulator.api_base + "/_portal/")
    assert (
        client.post(
            f"{link}/plans/{other_plan.id}/cancel", data={"csrf_token": csrf_token(page)}
        ).status_code
        == 404
    )
    assert client.post(f"{link}/plans/{plan.id}/cancel", data={}).status_code == 400
    db_session.expire_all()
    assert db_session.get(Plan, plan.id).status == PlanStatus.ACTIVE


def test_yearly_statements_net_of_refunds_and_never_twice(
    app: Flask, db_session: Session, smtp_sink: SmtpSink, clock: FrozenClock
) -> None:
    in_2025 = datetime(2025, 6, 1, tzinfo=UTC)
    ann = make_donor(db_session, email="ann@example.com", name="Ann")
    make_donation(db_session, donor=ann, amount_minor=1000, paid_at=in_2025)
    make_donation(db_session, donor=ann, amount_minor=2500, currency="USD", paid_at=in_2025)
    make_donation(db_session, donor=ann, amount_minor=900, refunded_minor=900, paid_at=in_2025)
    make_donation(
        db_session, donor=ann, amount_minor=7000, paid_at=datetime(2024, 5, 1, tzinfo=UTC)
    )
    bob = make_donor(db_session, email="bob@example.com")
    make_donation(
        db_session,
        donor=bob,
        amount_minor=500,
        plan=None,
        frequency=Frequency.MONTHLY,
        paid_at=in_2025,
    )
    make_donor(db_session, email="none@example.com")
    db_session.commit()
    app.config["STATEMENT_YEAR"] = 2025
    runner = app.test_cli_runner()
    result = runner.invoke(main, ["jobs", "run", "yearly-statements"])
    assert result.exit_code == 0 and "2 statements for 2025" in result.output
    from webapp.outbox.models import OutboxMessage

    db_session.expire_all()
    rows = db_session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    assert sorted(r.to_address for r in rows) == ["ann@example.com", "bob@example.com"]
    raw = next(r for r in rows if r.to_address == "ann@example.com").raw
    text = (
        BytesParser(policy=email.policy.default)
        .parsebytes(raw)
        .get_body(preferencelist=("plain",))
        .get_content()
    )
    assert "2025" in text and "€10" in text and "$25" in text and "€9" not in text
    again = runner.invoke(main, ["jobs", "run", "yearly-statements"])
    assert "0 statements" in again.output
    assert db_session.scalar(select(func.count()).select_from(DonorStatement)) == 2
