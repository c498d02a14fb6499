"""Donor self-service without a password: a signed link by email, then the donor's gifts
and plans, changing a plan's amount, cancelling it, and Stripe's billing portal."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from webapp.core.clock import as_utc
from webapp.donations import mail
from webapp.donations.gateway import StripeGateway, StripeUnavailable
from webapp.donations.models import Donor, Plan, PlanStatus
from webapp.donations.services import DonationConfig, advance_plan, find_donor
from webapp.outbox.gateway import Mailer

#: At most one self-service email per address in this window, however often it is asked.
ACCESS_RESEND_WINDOW = timedelta(minutes=5)


def request_donor_access(
    session: Session,
    mailer: Mailer,
    email: str,
    *,
    language: str,
    config: DonationConfig,
    now: datetime,
) -> list[int]:
    """Email the signed link when `email` belongs to a donor; returns the queued outbox ids
    (empty for unknown or throttled addresses; the caller answers the same either way)."""
    donor = find_donor(session, email)
    if donor is None:
        return []
    # A conditional UPDATE claims the send slot, so parallel requests send one email.
    claimed: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(Donor)
        .where(
            Donor.id == donor.id,
            (Donor.access_link_sent_at.is_(None))
            | (Donor.access_link_sent_at < now - ACCESS_RESEND_WINDOW),
        )
        .values(access_link_sent_at=now)
        .execution_options(synchronize_session=False)
    )
    if not claimed.rowcount:
        return []
    return [
        mail.send_donor_access_email(
            session, mailer, donor, language=language, config=config, now=now
        )
    ]


class PlanChangeError(Exception):
    """The plan cannot be changed (ended already, or Stripe refused)."""


def _changeable(plan: Plan) -> None:
    if PlanStatus(plan.status) == PlanStatus.CANCELED:
        raise PlanChangeError("canceled")


def change_plan_amount(
    session: Session,
    gateway: StripeGateway,
    mailer: Mailer,
    plan: Plan,
    amount_minor: int,
    *,
    config: DonationConfig,
    now: datetime,
) -> bool:
    """Charge `amount_minor` from the next payment on; False when it already is that amount.
    Raises `PlanChangeError` (nothing changed here) when Stripe refuses."""
    _changeable(plan)
    if amount_minor == plan.amount_minor:
        return False
    try:
        subscription = gateway.retrieve_subscription(plan.stripe_subscription_id)
        gateway.change_subscription_amount(
            subscription,
            amount_minor,
            idempotency_key=f"plan-{plan.id}-amount-{amount_minor}-{int(now.timestamp())}",
        )
    except StripeUnavailable as exc:
        raise PlanChangeError(str(exc)) from exc
    plan.amount_minor = amount_minor
    plan.updated_at = now
    # The webhook's customer.subscription.updated comes later with an older object state
    # than ours; moving the state time on keeps it from reverting the amount.
    plan.stripe_state_at = max(as_utc(plan.stripe_state_at or now), now)
    mail.send_plan_changed_email(session, mailer, plan, change="amount", config=config, now=now)
    return True


def cancel_plan(
    session: Session,
    gateway: StripeGateway,
    mailer: Mailer,
    plan: Plan,
    *,
    config: DonationConfig,
    now: datetime,
) -> None:
    """End the plan now at Stripe and here, and confirm it to the donor."""
    _changeable(plan)
    try:
        gateway.cancel_subscription(plan.stripe_subscription_id)
    except StripeUnavailable as exc:
        raise PlanChangeError(str(exc)) from exc
    advance_plan(plan, PlanStatus.CANCELED, state_at=now, now=now)
    mail.send_plan_changed_email(session, mailer, plan, change="canceled", config=config, now=now)


def billing_portal_url(gateway: StripeGateway, donor: Donor, return_url: str) -> str:
    """Stripe's billing portal for the donor's customer (to update the card)."""
    if not donor.stripe_customer_id:
        raise PlanChangeError("no Stripe customer")
    try:
        return gateway.create_portal_session(donor.stripe_customer_id, return_url)
    except StripeUnavailable as exc:
        raise PlanChangeError(str(exc)) from exc
