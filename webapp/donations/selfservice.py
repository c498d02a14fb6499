"""Donor self-service without a password: a signed link by email, then the donor's gifts
and plans, changing a plan's amount, cancelling it, and Stripe's billing portal."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from webapp.core.clock import as_utc
from webapp.db import begin_writing, locked
from webapp.donations import mail
from webapp.donations.gateway import StripeGateway, StripeUnavailable
from webapp.donations.models import Donor, Plan, PlanChange, PlanChangeKind, PlanStatus
from webapp.donations.records import DonationConfig, advance_plan, find_donor
from webapp.outbox.services import Mailer

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
        mail.queue_donor_access_email(
            session, mailer, donor, language=language, config=config, now=now
        )
    ]


class PlanChangeError(Exception):
    """The plan cannot be changed (ended already, or Stripe refused)."""


def _request_key(*parts: object) -> str:
    return hashlib.sha256("\n".join(str(part) for part in parts).encode()).hexdigest()


def _claim_change(
    session: Session,
    plan_id: int,
    kind: PlanChangeKind,
    request_key: str,
    amount_minor: int | None,
    now: datetime,
) -> PlanChange | None:
    """Phase one: store the request (committed) before Stripe hears of it. None when there
    is nothing to do: the same request was applied already, the plan already has that
    amount, or it is already cancelled."""
    begin_writing(session)
    plan = locked(session, select(Plan).where(Plan.id == plan_id))
    if plan is None:
        raise PlanChangeError("no such plan")
    if PlanStatus(plan.status) == PlanStatus.CANCELED:
        session.rollback()
        if kind == PlanChangeKind.CANCEL:
            return None
        raise PlanChangeError("canceled")
    change = locked(session, select(PlanChange).where(PlanChange.request_key == request_key))
    if change is not None and change.applied_at is not None:
        session.rollback()
        return None
    if change is None:
        if kind == PlanChangeKind.AMOUNT and amount_minor == plan.amount_minor:
            session.rollback()
            return None
        change = PlanChange(
            plan_id=plan_id,
            kind=kind,
            amount_minor=amount_minor,
            request_key=request_key,
            stripe_key=secrets.token_hex(16),
            requested_at=now,
        )
        session.add(change)
    elif change.failed_at is not None:
        change.stripe_key, change.failed_at = secrets.token_hex(16), None
    session.commit()
    return change


def _refused(session: Session, change_id: int, now: datetime, exc: Exception) -> PlanChangeError:
    session.rollback()
    session.execute(
        update(PlanChange)
        .where(PlanChange.id == change_id, PlanChange.applied_at.is_(None))
        .values(failed_at=now)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return PlanChangeError(str(exc))


def _locked_for_apply(session: Session, change_id: int) -> tuple[Plan, PlanChange] | None:
    """Phase three: the plan and the request, locked and re-read; None when the twin of
    this request (a double click) applied it first."""
    begin_writing(session)
    plan_id = session.scalar(select(PlanChange.plan_id).where(PlanChange.id == change_id))
    # The plan first, then its request: the order phase one takes them in. The other order
    # let two tabs each hold one lock and wait for the other's (a deadlock on PostgreSQL).
    plan = locked(session, select(Plan).where(Plan.id == plan_id)) if plan_id else None
    change = locked(session, select(PlanChange).where(PlanChange.id == change_id))
    if plan is None or change is None or change.applied_at is not None:
        session.rollback()
        return None
    return plan, change


def change_plan_amount(
    session: Session,
    gateway: StripeGateway,
    mailer: Mailer,
    plan_id: int,
    amount_minor: int,
    *,
    request_token: str,
    config: DonationConfig,
    now: datetime,
) -> bool:
    """Charge `amount_minor` from the next payment on; False when nothing was changed by
    this call (already that amount, or the same form was applied before).

    `request_token` is the form's one-time token: the same submission (a double click, a
    retry) is one request, one change at Stripe and one confirmation; another submission,
    even of the same amount a second later, is a new request. Commits (the request before
    Stripe is asked, then the change). Raises `PlanChangeError` when the plan has ended or
    Stripe refuses (nothing changed here)."""
    key = _request_key("amount", plan_id, amount_minor, request_token)
    change = _claim_change(session, plan_id, PlanChangeKind.AMOUNT, key, amount_minor, now)
    if change is None:
        return False
    change_id, stripe_key = change.id, change.stripe_key
    plan = session.get(Plan, plan_id)
    assert plan is not None
    try:
        subscription = gateway.retrieve_subscription(plan.stripe_subscription_id)
        gateway.change_subscription_amount(
            subscription, amount_minor, idempotency_key=f"plan-change-{stripe_key}"
        )
    except StripeUnavailable as exc:
        raise _refused(session, change_id, now, exc) from exc
    found = _locked_for_apply(session, change_id)
    if found is None:
        return False
    plan, change = found
    plan.amount_minor = amount_minor
    plan.updated_at = now
    # The webhook's customer.subscription.updated for this change carries a state from
    # about now; any older object must not bring the old amount back.
    plan.terms_at = max(as_utc(plan.terms_at or now), now)
    change.applied_at = now
    mail.queue_plan_changed_email(session, mailer, plan, change="amount", config=config, now=now)
    session.commit()
    return True


def cancel_plan(
    session: Session,
    gateway: StripeGateway,
    mailer: Mailer,
    plan_id: int,
    *,
    config: DonationConfig,
    now: datetime,
) -> bool:
    """End the plan now at Stripe and here, and confirm it to the donor once: a plan has
    one cancellation request whatever the number of tabs or clicks. False when it was
    already cancelled. Commits; raises `PlanChangeError` when Stripe refuses."""
    key = _request_key("cancel", plan_id)
    change = _claim_change(session, plan_id, PlanChangeKind.CANCEL, key, None, now)
    if change is None:
        return False
    change_id, stripe_key = change.id, change.stripe_key
    plan = session.get(Plan, plan_id)
    assert plan is not None
    try:
        gateway.cancel_subscription(
            plan.stripe_subscription_id, idempotency_key=f"plan-change-{stripe_key}"
        )
    except StripeUnavailable as exc:
        raise _refused(session, change_id, now, exc) from exc
    found = _locked_for_apply(session, change_id)
    if found is None:
        return False
    plan, change = found
    change.applied_at = now
    # Stripe's own event may have cancelled the plan first; the donor asked, so confirm.
    advance_plan(plan, PlanStatus.CANCELED, state_at=now, now=now)
    mail.queue_plan_changed_email(session, mailer, plan, change="canceled", config=config, now=now)
    session.commit()
    return True


def billing_portal_url(gateway: StripeGateway, donor: Donor, return_url: str) -> str:
    """Stripe's billing portal for the donor's customer (to update the card)."""
    if not donor.stripe_customer_id:
        raise PlanChangeError("no Stripe customer")
    try:
        return gateway.create_portal_session(donor.stripe_customer_id, return_url)
    except StripeUnavailable as exc:
        raise PlanChangeError(str(exc)) from exc
