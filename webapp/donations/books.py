"""The books: applying Stripe events (from the webhook, the thank-you page or the nightly
reconciliation) to donors, donations and plans.

Why the books stay right whatever Stripe's webhooks do:

* `apply_event` first inserts the event id (primary key) and only then reads anything, in
  the caller's transaction. A second delivery of the same event, even in parallel, fails
  on that insert (`DuplicateEvent`) and changes nothing; a handler that fails half way
  raises, the caller rolls back the whole transaction, and Stripe's retry starts clean.
* Payments are found by their unique business keys (Checkout Session, invoice,
  PaymentIntent) and locked (`FOR UPDATE` on PostgreSQL) before they change, so two
  events about one payment (checkout completed and the first `invoice.paid`) meet on the
  same row: the first marks it paid and queues the receipt, the second finds it paid.
* Statuses only move forward (`advance_donation`, `advance_plan`), and a subscription
  state older than the one applied is ignored: a late "active" after "canceled" is a no-op.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Flask
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp.core.clock import as_utc
from webapp.donations import mail
from webapp.donations import stripe_fields as f
from webapp.donations.gateway import StripeGateway, StripeUnavailable
from webapp.donations.models import (
    Donation,
    DonationKind,
    DonationStatus,
    Frequency,
    Plan,
    PlanFailure,
    PlanStatus,
    StripeEvent,
)
from webapp.donations.services import (
    DonationConfig,
    advance_donation,
    advance_plan,
    donation_config,
)
from webapp.outbox.gateway import Mailer
from webapp.subscribers.settings import ListSettings, list_settings

log = logging.getLogger("readership.donations")


class DuplicateEvent(Exception):
    """The event was applied before (or is being applied right now by another worker)."""


@dataclass
class Books:
    """What applying events needs: where emails go, Stripe (for the few lookups an event
    does not carry; optional), configuration and the time."""

    mailer: Mailer
    gateway: StripeGateway | None
    config: DonationConfig
    now: datetime
    #: Signup settings, for the newsletter opt-in a donor may ask for with the gift.
    list_settings: ListSettings
    #: Outbox rows queued while applying; the caller delivers them after committing.
    queued: list[int] = field(default_factory=list)

    def _queued(self, message_id: int | None) -> None:
        if message_id is not None:
            self.queued.append(message_id)


Handler = Callable[[Session, dict[str, Any], Books, datetime], str]
HANDLERS: dict[str, Handler] = {}


def handles(*types: str) -> Callable[[Handler], Handler]:
    """Register a handler for Stripe event types."""

    def register(handler: Handler) -> Handler:
        for event_type in types:
            HANDLERS[event_type] = handler
        return handler

    return register


def apply_event(
    session: Session, event: Mapping[str, Any], books: Books, *, via: str = "webhook"
) -> str:
    """Apply one Stripe event in `session` (the caller commits) and say what it did.

    Raises `DuplicateEvent` when the event was applied before (the caller rolls back and
    answers 200); any other exception means nothing may be committed. Types without a
    handler change nothing and are not recorded.
    """
    event_type = str(event.get("type") or "")
    handler = HANDLERS.get(event_type)
    if handler is None:
        return "ignored: unhandled type"
    event_id = str(event["id"])
    created = f.timestamp(event.get("created")) or books.now
    row = StripeEvent(
        id=event_id, type=event_type, created_at=created, received_at=books.now, via=via
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError as exc:
        raise DuplicateEvent(event_id) from exc
    obj = f.dig(event, "data", "object")
    if not isinstance(obj, Mapping):
        raise ValueError(f"event {event_id} has no data.object")
    row.outcome = handler(session, dict(obj), books, created)[:300]
    log.info("stripe event %s %s: %s", event_id, event_type, row.outcome)
    return row.outcome


# --- lookups ---------------------------------------------------------------------------------


def _locked(session: Session, stmt: Any) -> Any:
    # Row lock on PostgreSQL so two events about one payment apply one after the other;
    # SQLite already runs one writer at a time (the event insert took the write lock).
    return session.scalar(stmt.with_for_update())


def _donation_by(session: Session, column: Any, value: str | None) -> Donation | None:
    if not value:
        return None
    return _locked(session, select(Donation).where(column == value))


def _donation_from_metadata(
    session: Session,
    metadata: Mapping[str, str],
    checkout_id: str | None = None,
    customer_id: str | None = None,
) -> Donation | None:
    """Our pending donation named in a Stripe object's metadata, provided the object
    belongs to the same Checkout Session and Stripe customer (metadata alone is not proof)."""
    raw = metadata.get("donation_id", "")
    if not raw.isdigit():
        return None
    donation = _locked(session, select(Donation).where(Donation.id == int(raw)))
    if donation is None:
        return None
    if checkout_id and donation.stripe_checkout_session_id not in (None, checkout_id):
        return None  # metadata copied from elsewhere: do not trust it
    known_customer = donation.donor.stripe_customer_id
    if customer_id and known_customer and known_customer != customer_id:
        return None
    return donation


def _plan_by_subscription(session: Session, subscription_id: str | None) -> Plan | None:
    if not subscription_id:
        return None
    return _locked(
        session, select(Plan).where(Plan.stripe_subscription_id == subscription_id)
    )


# --- payments --------------------------------------------------------------------------------


def _mark_paid(session: Session, donation: Donation, books: Books, paid_at: datetime) -> bool:
    """Move a donation to paid; on that move only, queue its receipt and (first gifts)
    start the newsletter opt-in the donor asked for."""
    was_pending = DonationStatus(donation.status) != DonationStatus.PAID
    if not advance_donation(donation, DonationStatus.PAID, now=books.now):
        return False
    if was_pending:
        donation.paid_at = paid_at
    books._queued(
        mail.send_receipt_email(session, books.mailer, donation, config=books.config, now=books.now)
    )
    if donation.wants_newsletter:
        _start_newsletter_opt_in(session, donation, books)
    return True


def _start_newsletter_opt_in(session: Session, donation: Donation, books: Books) -> None:
    from webapp.subscribers.models import SubscriberSource, SubscriberStatus
    from webapp.subscribers.services import SignupRequest, find_subscriber, request_subscription

    existing = find_subscriber(session, donation.donor.email)
    if existing is not None and existing.status == SubscriberStatus.CONFIRMED:
        return  # already reading the digest: no "manage your subscription" email
    outcome = request_subscription(
        session,
        books.mailer,
        SignupRequest(
            email=donation.donor.email,
            language=donation.language,
            source=SubscriberSource.DONATION,
            name=donation.donor.name,
        ),
        settings=books.list_settings,
        now=books.now,
    )
    books.queued.extend(outcome.message_ids)


def books_for_app(app: Flask, now: datetime) -> Books:
    """`Books` wired from an app: its mailer, Stripe gateway (if configured) and settings."""
    from webapp.outbox.gateway import get_mailer

    return Books(
        mailer=get_mailer(app),
        gateway=app.extensions.get("stripe_gateway"),
        config=donation_config(app.config),
        now=now,
        list_settings=list_settings(app.config),
    )


def apply_checkout_session(
    session: Session, checkout: Mapping[str, Any], books: Books, *, state_at: datetime | None = None
) -> Donation | None:
    """Apply a Checkout Session as Stripe reports it (event or retrieval); idempotent.

    Returns the donation, or None when the session is not ours and carries no email.
    Unpaid sessions (delayed payment methods) move the donation to processing.
    """
    checkout_id = str(checkout.get("id") or "")
    donation = _donation_by(session, Donation.stripe_checkout_session_id, checkout_id)
    if donation is None:
        donation = _donation_from_metadata(
            session, f.metadata(checkout), checkout_id, f.object_id(checkout.get("customer"))
        )
        if donation is not None and donation.stripe_checkout_session_id is None:
            donation.stripe_checkout_session_id = checkout_id
    if donation is None:
        # Not opened by this app (a payment link, a shop on the same Stripe account).
        return None
    customer_id = f.object_id(checkout.get("customer"))
    if customer_id and donation.donor.stripe_customer_id is None:
        donation.donor.stripe_customer_id = customer_id
    paid_at = state_at or books.now
    if checkout.get("payment_status") not in ("paid", "no_payment_required"):
        if checkout.get("status") == "complete":
            advance_donation(donation, DonationStatus.PROCESSING, now=books.now)
        return donation
    if checkout.get("mode") == "subscription":
        donation = _attach_first_invoice(session, donation, checkout, books, paid_at)
    else:
        intent = f.object_id(checkout.get("payment_intent"))
        if intent and donation.stripe_payment_intent_id is None:
            donation.stripe_payment_intent_id = intent
    _mark_paid(session, donation, books, paid_at)
    return donation


def _attach_first_invoice(
    session: Session,
    donation: Donation,
    checkout: Mapping[str, Any],
    books: Books,
    paid_at: datetime,
) -> Donation:
    """Link a subscription checkout's donation to its plan and first invoice.

    When the first `invoice.paid` came first and could not find our donation, it recorded
    the payment on a row of its own; that row takes over the checkout's details and the
    pending row (never paid) is dropped, so the payment still counts once.
    """
    subscription_id = f.object_id(checkout.get("subscription"))
    invoice_id = f.object_id(checkout.get("invoice"))
    plan = _ensure_plan_for(session, donation, subscription_id, books, paid_at)
    donation.kind = DonationKind.RECURRING
    donation.plan = plan
    if invoice_id and donation.stripe_invoice_id != invoice_id:
        other = _donation_by(session, Donation.stripe_invoice_id, invoice_id)
        if other is not None and other.id != donation.id:
            return _merge_into(session, keep=other, drop=donation)
        donation.stripe_invoice_id = invoice_id
    return donation


def _merge_into(session: Session, *, keep: Donation, drop: Donation) -> Donation:
    for name in (
        "campaign_id",
        "source",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "utm_content",
        "utm_term",
        "language",
        "is_anonymous",
        "wants_newsletter",
        "fee_covered_minor",
    ):
        setattr(keep, name, getattr(drop, name))
    checkout_id, drop.stripe_checkout_session_id = drop.stripe_checkout_session_id, None
    drop.checkout_key = None
    session.flush()
    keep.stripe_checkout_session_id = checkout_id
    session.delete(drop)
    session.flush()
    return keep


def _ensure_plan_for(
    session: Session,
    donation: Donation,
    subscription_id: str | None,
    books: Books,
    state_at: datetime,
) -> Plan | None:
    """The plan of `subscription_id`, created from the donation when new, made active."""
    if not subscription_id:
        return donation.plan
    plan = _plan_by_subscription(session, subscription_id)
    if plan is None:
        plan = Plan(
            donor=donation.donor,
            stripe_subscription_id=subscription_id,
            status=PlanStatus.INCOMPLETE,
            interval=donation.frequency
            if Frequency(donation.frequency).is_recurring
            else Frequency.MONTHLY,
            amount_minor=donation.amount_minor,
            currency=donation.currency,
            campaign_id=donation.campaign_id,
            source=donation.source,
            created_at=books.now,
        )
        session.add(plan)
        session.flush()
    advance_plan(plan, PlanStatus.ACTIVE, state_at=None, now=books.now)
    if plan.started_at is None:
        plan.started_at = state_at
    return plan


# --- handlers --------------------------------------------------------------------------------


@handles("checkout.session.completed", "checkout.session.async_payment_succeeded")
def _checkout_completed(
    session: Session, checkout: dict[str, Any], books: Books, created: datetime
) -> str:
    donation = apply_checkout_session(session, checkout, books, state_at=created)
    if donation is None:
        return "ignored: checkout session not opened by this app"
    return f"donation {donation.id} {donation.status}"


@handles("checkout.session.async_payment_failed", "checkout.session.expired")
def _checkout_failed(
    session: Session, checkout: dict[str, Any], books: Books, created: datetime
) -> str:
    donation = _donation_by(session, Donation.stripe_checkout_session_id, str(checkout["id"]))
    if donation is None:
        return "ignored: unknown checkout session"
    expired = checkout.get("status") == "expired"
    status = DonationStatus.EXPIRED if expired else DonationStatus.FAILED
    moved = advance_donation(donation, status, now=books.now)
    return f"donation {donation.id} {'-> ' if moved else 'stays '}{donation.status}"


@handles("invoice.paid")
def _invoice_paid(
    session: Session, invoice: dict[str, Any], books: Books, created: datetime
) -> str:
    subscription_id = f.invoice_subscription_id(invoice)
    if not subscription_id:
        return "ignored: invoice without subscription"
    if f.invoice_amount_paid(invoice) <= 0:
        return "ignored: nothing paid"
    paid_at = f.invoice_paid_at(invoice) or created
    donation = _donation_by(session, Donation.stripe_invoice_id, str(invoice["id"]))
    plan = _plan_by_subscription(session, subscription_id)
    if donation is None and f.invoice_is_first(invoice):
        donation = _first_payment_donation(session, invoice, subscription_id, plan, books)
        if donation is not None:
            donation.stripe_invoice_id = str(invoice["id"])
            plan = _ensure_plan_for(session, donation, subscription_id, books, paid_at)
            donation.plan = plan
            donation.kind = DonationKind.RECURRING
    if donation is None:
        if plan is None:
            # A renewal of a plan whose checkout never reached us: adopt it only when the
            # subscription names one of our donations (other subscriptions on the same
            # Stripe account are not gifts).
            ours = _first_payment_donation(session, invoice, subscription_id, None, books)
            if ours is None:
                return "ignored: subscription not opened by this app"
            plan = _ensure_plan_for(session, ours, subscription_id, books, paid_at)
        if plan is None:  # pragma: no cover - a subscription id always gives a plan
            return "ignored: no plan"
        donation = Donation(
            donor=plan.donor,
            plan=plan,
            kind=DonationKind.RECURRING,
            frequency=plan.interval,
            amount_minor=f.invoice_amount_paid(invoice),
            currency=str(invoice.get("currency") or plan.currency).upper(),
            campaign_id=plan.campaign_id,
            source=plan.source,
            language=plan.donor.language,
            stripe_invoice_id=str(invoice["id"]),
            created_at=books.now,
        )
        session.add(donation)
        session.flush()
    _link_payment_ids(session, donation, invoice, books)
    if plan is not None:
        advance_plan(plan, PlanStatus.ACTIVE, state_at=created, now=books.now)
        plan.last_failed_at = None
        period_end = f.dig(invoice, "lines", "data")
        if period_end:
            end = f.timestamp(f.dig(period_end[0], "period", "end"))
            if end and (plan.current_period_end is None or end > as_utc(plan.current_period_end)):
                plan.current_period_end = end
    moved = _mark_paid(session, donation, books, paid_at)
    return f"donation {donation.id} {'paid' if moved else 'already paid'}"


def _first_payment_donation(
    session: Session,
    invoice: Mapping[str, Any],
    subscription_id: str,
    plan: Plan | None,
    books: Books,
) -> Donation | None:
    """Our pending donation that the first invoice of a subscription pays."""
    customer_id = f.object_id(invoice.get("customer"))
    donation = _donation_from_metadata(
        session, f.invoice_subscription_metadata(invoice), customer_id=customer_id
    )
    if donation is not None:
        return donation
    if plan is not None:
        first = session.scalar(
            select(Donation)
            .where(Donation.plan_id == plan.id, Donation.stripe_invoice_id.is_(None))
            .order_by(Donation.id)
            .limit(1)
        )
        if first is not None:
            return first
    if books.gateway is not None:
        try:
            subscription = books.gateway.retrieve_subscription(subscription_id)
        except StripeUnavailable:
            return None
        return _donation_from_metadata(
            session, f.metadata(subscription), customer_id=customer_id
        )
    return None


def _link_payment_ids(
    session: Session, donation: Donation, invoice: Mapping[str, Any], books: Books
) -> None:
    """Remember which PaymentIntent and charge paid the invoice, so a later refund or
    dispute (which names only those) finds this donation."""
    intent = f.invoice_payment_intent_id(invoice)
    if intent is None and books.gateway is not None:
        intent = books.gateway.invoice_payment_intent(str(invoice["id"]))
    if intent and donation.stripe_payment_intent_id is None:
        taken = session.scalar(
            select(Donation.id).where(Donation.stripe_payment_intent_id == intent)
        )
        if taken is None:
            donation.stripe_payment_intent_id = intent
    charge = f.invoice_charge_id(invoice)
    if charge and donation.stripe_charge_id is None:
        donation.stripe_charge_id = charge


def _record_failure(
    session: Session, plan: Plan, invoice: dict[str, Any], created: datetime
) -> None:
    """One `PlanFailure` per failed invoice (retries of the same invoice add nothing)."""
    invoice_id = str(invoice.get("id") or "")
    if not invoice_id:
        return
    exists = session.scalar(
        select(PlanFailure.id).where(PlanFailure.stripe_invoice_id == invoice_id)
    )
    if exists is None:
        session.add(PlanFailure(plan_id=plan.id, stripe_invoice_id=invoice_id, failed_at=created))
        session.flush()


@handles("invoice.payment_failed")
def _invoice_failed(
    session: Session, invoice: dict[str, Any], books: Books, created: datetime
) -> str:
    plan = _plan_by_subscription(session, f.invoice_subscription_id(invoice))
    if plan is None:
        return "ignored: unknown subscription"
    if f.invoice_is_first(invoice):
        return "ignored: first payment (Checkout shows the donor the error)"
    advance_plan(plan, PlanStatus.PAST_DUE, state_at=created, now=books.now)
    plan.last_failed_at = created
    _record_failure(session, plan, invoice, created)
    # Stripe retries a failed renewal several times, one event each: write after the first.
    attempt = int(invoice.get("attempt_count") or 1)
    if attempt > 1:
        return f"plan {plan.id} past due (attempt {attempt}, no email)"
    books._queued(
        mail.send_payment_failed_email(
            session,
            books.mailer,
            plan,
            amount_minor=int(invoice.get("amount_due") or plan.amount_minor),
            next_attempt=f.invoice_next_attempt(invoice),
            config=books.config,
            now=books.now,
        )
    )
    return f"plan {plan.id} past due, donor emailed"


@handles(
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
)
def _subscription_changed(
    session: Session, subscription: dict[str, Any], books: Books, created: datetime
) -> str:
    plan = _plan_by_subscription(session, str(subscription["id"]))
    if plan is None:
        return "ignored: subscription not known yet (its checkout creates the plan)"
    return apply_subscription_state(plan, subscription, books, state_at=created)


def apply_subscription_state(
    plan: Plan, subscription: Mapping[str, Any], books: Books, *, state_at: datetime
) -> str:
    """Bring a plan in line with a subscription object, unless a newer state was applied."""
    if plan.stripe_state_at is not None and state_at < as_utc(plan.stripe_state_at):
        return f"plan {plan.id} stale state ignored"
    if PlanStatus(plan.status) == PlanStatus.CANCELED:
        return f"plan {plan.id} stays canceled"
    status = PlanStatus.from_stripe(str(subscription.get("status") or ""))
    advance_plan(plan, status, state_at=state_at, now=books.now)
    if status != PlanStatus.CANCELED:
        amount, currency, interval = f.subscription_price(subscription)
        if amount:
            plan.amount_minor = amount
        if currency:
            plan.currency = currency
        if interval in ("month", "year"):
            plan.interval = Frequency(interval)
        plan.cancel_at_period_end = bool(subscription.get("cancel_at_period_end"))
        plan.current_period_end = f.subscription_period_end(subscription) or plan.current_period_end
    plan.updated_at = books.now
    return f"plan {plan.id} {plan.status}"


@handles("charge.refunded")
def _charge_refunded(
    session: Session, charge: dict[str, Any], books: Books, created: datetime
) -> str:
    donation = _donation_for_charge(session, charge)
    if donation is None:
        return "ignored: charge not linked to a donation"
    refunded = int(charge.get("amount_refunded") or 0)
    # The total refunded so far: events may come out of order, so keep the largest.
    if refunded > donation.refunded_minor:
        donation.refunded_minor = min(refunded, donation.amount_minor)
        donation.refund_seen_at = None
        donation.updated_at = books.now
    return f"donation {donation.id} refunded {donation.refunded_minor}"


@handles("charge.dispute.created", "charge.dispute.closed")
def _dispute(session: Session, dispute: dict[str, Any], books: Books, created: datetime) -> str:
    donation = _donation_by(
        session, Donation.stripe_payment_intent_id, f.object_id(dispute.get("payment_intent"))
    ) or _donation_by(session, Donation.stripe_charge_id, f.object_id(dispute.get("charge")))
    if donation is None:
        return "ignored: dispute not linked to a donation"
    if dispute.get("status") == "won":
        donation.disputed_minor = 0
    else:
        donation.disputed_minor = min(int(dispute.get("amount") or 0), donation.amount_minor)
        donation.refund_seen_at = None
    donation.updated_at = books.now
    return f"donation {donation.id} disputed {donation.disputed_minor}"


def _donation_for_charge(session: Session, charge: Mapping[str, Any]) -> Donation | None:
    donation = _donation_by(
        session, Donation.stripe_payment_intent_id, f.charge_payment_intent_id(charge)
    ) or _donation_by(session, Donation.stripe_charge_id, f.object_id(charge.get("id")))
    if donation is None:
        donation = _donation_by(session, Donation.stripe_invoice_id, f.charge_invoice_id(charge))
    if donation is not None and donation.stripe_charge_id is None:
        donation.stripe_charge_id = f.object_id(charge.get("id"))
    return donation


#: Event types to enable on the Stripe webhook endpoint (and that reconciliation lists).
HANDLED_EVENT_TYPES = sorted(HANDLERS)
