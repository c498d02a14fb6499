"""The books: applying Stripe events (from the webhook, the thank-you page or the nightly
reconciliation) to donors, donations and plans.

Why the books end the same whatever order, duplicates or concurrency Stripe's events come in:

* `apply_event` first inserts the event id (primary key) and only then reads anything, in
  the caller's transaction. A second delivery of the same event, even in parallel, fails
  on that insert (`DuplicateEvent`) and changes nothing; a handler that fails half way
  raises, the caller rolls back the whole transaction, and Stripe's retry starts clean.
* Every field an event sets is a *join*: it only moves up an order that does not depend on
  arrival. Statuses only forward by their tables (`DONATION_MOVES`, `PLAN_MOVES`,
  `DISPUTE_MOVES`), then the event's time (`advance_donation`, `advance_plan`,
  `advance_dispute`); amounts refunded are Stripe's running totals (the largest wins); dates
  are the earliest seen (`earliest`); subscription terms come from the newest subscription
  object (`Plan.terms_at`). Applying the same set of events in any order therefore gives
  the same row.
* An event about something not recorded yet (a refund before its payment, a cancellation
  before its checkout) is **parked**, never dropped: its payload is kept with the Stripe
  ids it waits for. Whatever records one of those ids announces it (`BooksContext.announce`) and
  the parked events are applied in that same transaction (`apply_waiting`). On PostgreSQL
  a transaction-scoped advisory lock per id closes the race between parking and recording.
  "Not a payment this app opened" is decided from the object's metadata (or by asking
  Stripe), never from "not found yet".
* Payments are found by their unique business keys (Checkout Session, invoice,
  PaymentIntent) under a row lock that re-reads the row (`populate_existing`), so two
  paths about one payment (the webhook and the thank-you page) meet on the same row: the
  first marks it paid and queues the receipt, the second finds it paid.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from flask import Flask
from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp.core.clock import as_utc
from webapp.db import locked
from webapp.donations import mail
from webapp.donations import stripe_fields as f
from webapp.donations.gateway import StripeGateway, StripeUnavailable
from webapp.donations.models import (
    Dispute,
    DisputeStatus,
    Donation,
    DonationKind,
    DonationStatus,
    Frequency,
    Plan,
    PlanFailure,
    PlanStatus,
    StripeEvent,
    StripeEventWait,
)
from webapp.donations.records import (
    DonationConfig,
    advance_dispute,
    advance_donation,
    advance_plan,
    assign_receipt_number,
    donation_config,
    earliest,
)
from webapp.outbox.services import Mailer
from webapp.subscribers.services import ListSettings, list_settings

log = logging.getLogger("readership.donations")

#: The outcome of a parked event starts with this (staff filter on it).
PARKED = "parked"


class DuplicateEvent(Exception):
    """The event was applied before (or is being applied right now by another worker)."""


class WaitFor(Exception):
    """Raised by a handler, before it writes anything, when the event is about something
    not recorded yet: the event is parked until one of `keys` is recorded."""

    def __init__(self, reason: str, keys: Iterable[str | None]) -> None:
        self.keys = sorted({key for key in keys if key and not key.endswith(":")})
        super().__init__(reason)
        self.reason = reason


def wait_key(kind: str, stripe_id: str | None) -> str | None:
    """The key a parked event waits on: `cs:`, `in:`, `pi:`, `ch:` or `sub:` and the id."""
    return f"{kind}:{stripe_id}" if stripe_id else None


@dataclass
class BooksContext:
    """One transaction's worth of applying events: what it needs (where emails go, Stripe
    for the few lookups an event does not carry, configuration, the time) and what it
    collects (emails to deliver after the commit, ids announced, parked events that failed)."""

    mailer: Mailer
    gateway: StripeGateway | None
    config: DonationConfig
    now: datetime
    #: Signup settings, for the newsletter opt-in a donor may ask for with the gift.
    list_settings: ListSettings
    #: Outbox rows queued while applying; the caller delivers them after committing.
    queued: list[int] = field(default_factory=list)
    #: Stripe ids recorded in this transaction that parked events may wait for.
    announced: set[str] = field(default_factory=set)
    #: Parked events that failed when tried again in this transaction (not tried twice).
    failed_parked: set[str] = field(default_factory=set)

    def _queued(self, message_id: int | None) -> None:
        if message_id is not None:
            self.queued.append(message_id)

    def announce(self, kind: str, stripe_id: str | None) -> None:
        """`stripe_id` is now recorded: events parked on it are applied before commit."""
        key = wait_key(kind, stripe_id)
        if key:
            self.announced.add(key)


#: Applies one Stripe event's object; `HANDLERS` (at the end of this module) says which.
Handler = Callable[[Session, dict[str, Any], BooksContext, datetime], str]


def apply_event(
    session: Session, event: Mapping[str, Any], books: BooksContext, *, via: str = "webhook"
) -> str:
    """Apply one Stripe event in `session` (the caller commits) and say what it did.

    Raises `DuplicateEvent` when the event was received before (the caller rolls back and
    answers 200); any other exception means nothing may be committed. Types without a
    handler change nothing and are not recorded. An event about something not recorded
    yet is parked (outcome "parked: ...") and applied when that object is recorded.
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
    outcome = _run(session, row, dict(obj), books)
    apply_waiting(session, books)
    log.info("stripe event %s %s: %s", event_id, event_type, outcome)
    return outcome


def _run(
    session: Session,
    row: StripeEvent,
    obj: dict[str, Any],
    books: BooksContext,
    *,
    contained: bool = False,
) -> str:
    """Run the event's handler; park the event when it waits for something.

    Handlers raise `WaitFor` before they write, so a first application needs no savepoint
    (any other error fails the whole transaction, as it should); a parked event tried
    again runs `contained` in one, so its failure cannot undo the event that woke it."""
    handler = HANDLERS[row.type]
    created = as_utc(row.created_at)

    def attempt() -> str:
        if not contained:
            return handler(session, obj, books, created)
        with session.begin_nested():
            return handler(session, obj, books, created)

    try:
        outcome = attempt()
    except WaitFor as wait:
        # On PostgreSQL another transaction may be recording the object right now: take
        # its keys' locks, then look once more (a fresh statement sees what it committed).
        # Whoever records it later takes the same lock before looking for parked events.
        if not _lock_keys(session, wait.keys):
            return _park(session, row, obj, wait)
        try:
            outcome = attempt()
        except WaitFor as again:
            return _park(session, row, obj, again)
    _unpark(session, row)
    row.outcome = outcome[:300]
    return row.outcome


def _park(session: Session, row: StripeEvent, obj: dict[str, Any], wait: WaitFor) -> str:
    session.execute(delete(StripeEventWait).where(StripeEventWait.event_id == row.id))
    row.parked = True
    row.payload = obj
    row.outcome = f"{PARKED}: {wait.reason}"[:300]
    session.add_all(StripeEventWait(event_id=row.id, key=key[:300]) for key in wait.keys)
    session.flush()
    return row.outcome


def _unpark(session: Session, row: StripeEvent) -> None:
    if row.parked:
        session.execute(delete(StripeEventWait).where(StripeEventWait.event_id == row.id))
        row.parked = False
        row.payload = None


def _lock_id(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)


def _lock_keys(session: Session, keys: Iterable[str]) -> bool:
    """Transaction-scoped advisory locks on PostgreSQL (sorted, so two transactions take
    them in the same order); False on SQLite, whose single writer needs none."""
    if session.get_bind().dialect.name != "postgresql":
        return False
    for key in sorted(set(keys)):
        session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _lock_id(key)})
    return True


def apply_waiting(session: Session, books: BooksContext) -> int:
    """Apply the parked events waiting for ids announced in this transaction (and for the
    ids those in turn record). Returns how many were applied."""
    applied = 0
    while books.announced:
        keys = sorted(books.announced)
        books.announced.clear()
        _lock_keys(session, keys)
        waits = StripeEventWait.__table__
        # A plain statement first (no flush: waits of this transaction are flushed when
        # parked); almost always nothing waits, and the payment's hot path stays short.
        waiting_ids = list(
            session.connection()
            .execute(select(waits.c.event_id).where(waits.c.key.in_(keys)).distinct())
            .scalars()
        )
        if not waiting_ids:
            continue
        rows = session.scalars(
            select(StripeEvent)
            .where(StripeEvent.id.in_(waiting_ids), StripeEvent.parked.is_(True))
            .order_by(StripeEvent.created_at, StripeEvent.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).all()
        for row in rows:
            if row.parked and row.payload is not None and row.id not in books.failed_parked:
                applied += _retry(session, row, books)
    return applied


def _retry(session: Session, row: StripeEvent, books: BooksContext) -> int:
    """Apply a parked event again; 1 when it applied. A parked event that fails (its
    savepoint rolled back) stays parked with the error, rather than failing the event that
    announced its object, which Stripe would then retry for ever."""
    try:
        _run(session, row, dict(row.payload or {}), books, contained=True)
    except Exception as exc:
        log.exception("parked stripe event %s could not be applied", row.id)
        books.failed_parked.add(row.id)
        row.outcome = f"{PARKED}: failed to apply: {type(exc).__name__}"[:300]
        return 0
    return 0 if row.parked else 1


def apply_parked(session: Session, books: BooksContext, *, limit: int = 1000) -> int:
    """Try every parked event again (reconciliation: the object may have been recorded by
    a path that could not announce it, or Stripe can now tell what it is about)."""
    rows = session.scalars(
        select(StripeEvent)
        .where(StripeEvent.parked.is_(True))
        .order_by(StripeEvent.created_at, StripeEvent.id)
        .limit(limit)
    ).all()
    applied = sum(_retry(session, row, books) for row in rows if row.payload is not None)
    apply_waiting(session, books)
    return applied


# --- lookups --------------------------------------------------------------------------------


def _donation_by(session: Session, column: Any, value: str | None) -> Donation | None:
    if not value:
        return None
    return locked(session, select(Donation).where(column == value))


def _metadata_donation_id(metadata: Mapping[str, str]) -> int | None:
    raw = str(metadata.get("donation_id", ""))
    return int(raw) if raw.isdigit() else None


def _donation_from_metadata(
    session: Session,
    metadata: Mapping[str, str],
    checkout_id: str | None = None,
    customer_id: str | None = None,
) -> Donation | None:
    """Our donation named in a Stripe object's metadata, provided the object belongs to
    the same Checkout Session and Stripe customer (metadata alone is not proof)."""
    donation_id = _metadata_donation_id(metadata)
    if donation_id is None:
        return None
    donation = locked(session, select(Donation).where(Donation.id == donation_id))
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
    return locked(session, select(Plan).where(Plan.stripe_subscription_id == subscription_id))


def _link(donation: Donation, books: BooksContext, **ids: str | None) -> None:
    """Record Stripe ids on a donation (only where none is set) and announce them."""
    kinds = {
        "stripe_checkout_session_id": "cs",
        "stripe_invoice_id": "in",
        "stripe_payment_intent_id": "pi",
        "stripe_charge_id": "ch",
    }
    for column, value in ids.items():
        if value and getattr(donation, column) is None:
            setattr(donation, column, value)
            books.announce(kinds[column], value)


# --- payments --------------------------------------------------------------------------------


def record_payment(
    session: Session, donation: Donation, books: BooksContext, paid_at: datetime
) -> bool:
    """Mark a donation paid as of `paid_at` (the payment's own time, from Stripe). On the
    move to paid only: the receipt number, the receipt email and (when the donor asked) the
    newsletter opt-in. A later report of the same payment can only make the date earlier."""
    if DonationStatus(donation.status) == DonationStatus.PAID:
        donation.paid_at = earliest(donation.paid_at, paid_at)
        return False
    advance_donation(donation, DonationStatus.PAID, now=books.now)
    donation.paid_at = paid_at
    assign_receipt_number(session, donation)
    books._queued(
        mail.queue_receipt_email(
            session, books.mailer, donation, config=books.config, now=books.now
        )
    )
    if donation.wants_newsletter:
        _start_newsletter_opt_in(session, donation, books)
    return True


def _start_newsletter_opt_in(session: Session, donation: Donation, books: BooksContext) -> None:
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


def books_context(app: Flask, now: datetime) -> BooksContext:
    """`BooksContext` wired from an app: its mailer, Stripe gateway (if configured) and settings."""
    from webapp.outbox.services import get_mailer

    return BooksContext(
        mailer=get_mailer(app),
        gateway=app.extensions.get("stripe_gateway"),
        config=donation_config(app.config),
        now=now,
        list_settings=list_settings(app.config),
    )


def _checkout_donation(session: Session, checkout: Mapping[str, Any]) -> Donation | None:
    checkout_id = str(checkout.get("id") or "")
    donation = _donation_by(session, Donation.stripe_checkout_session_id, checkout_id)
    if donation is None:
        donation = _donation_from_metadata(
            session, f.metadata(checkout), checkout_id, f.object_id(checkout.get("customer"))
        )
    return donation


def apply_checkout_session(
    session: Session,
    checkout: Mapping[str, Any],
    books: BooksContext,
    *,
    state_at: datetime | None = None,
    fallback_at: datetime | None = None,
) -> Donation | None:
    """Apply a Checkout Session as Stripe reports it (event or retrieval); idempotent.

    A gift is dated when the donor paid at Checkout. `state_at` is that time when the
    caller knows it (a `checkout.session.completed` event's time); otherwise (a retrieved
    session, a delayed method settling days later) it is asked of Stripe, and
    `fallback_at` (else now) used when Stripe cannot say. Returns the donation, or None
    when the session's metadata names none of ours. Unpaid sessions (delayed payment
    methods) move the donation to processing. The caller applies waiting events
    (`apply_waiting`) before committing.
    """
    donation = _checkout_donation(session, checkout)
    if donation is None:
        # Not opened by this app (a payment link, a shop on the same Stripe account).
        return None
    _link(donation, books, stripe_checkout_session_id=str(checkout.get("id") or "") or None)
    customer_id = f.object_id(checkout.get("customer"))
    if customer_id and donation.donor.stripe_customer_id is None:
        donation.donor.stripe_customer_id = customer_id
    if checkout.get("payment_status") not in ("paid", "no_payment_required"):
        if checkout.get("status") == "complete":
            advance_donation(donation, DonationStatus.PROCESSING, now=books.now)
        return donation
    paid_at = state_at or _payment_time(books, checkout) or fallback_at or books.now
    if checkout.get("mode") == "subscription":
        donation = _attach_first_invoice(session, donation, checkout, books, paid_at)
    else:
        _link(donation, books, stripe_payment_intent_id=f.object_id(checkout.get("payment_intent")))
    record_payment(session, donation, books, paid_at)
    return donation


def _payment_time(books: BooksContext, checkout: Mapping[str, Any]) -> datetime | None:
    """When a retrieved Checkout Session's money moved, as Stripe recorded it."""
    if books.gateway is None:
        return None
    try:
        return books.gateway.checkout_paid_at(checkout)
    except StripeUnavailable:
        return None


def _attach_first_invoice(
    session: Session,
    donation: Donation,
    checkout: Mapping[str, Any],
    books: BooksContext,
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
        _link(donation, books, stripe_invoice_id=invoice_id)
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
    books: BooksContext,
    state_at: datetime,
) -> Plan | None:
    """The plan of `subscription_id`, created from the donation when new, made active as
    of `state_at` (its first payment)."""
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
        books.announce("sub", subscription_id)
    advance_plan(plan, PlanStatus.ACTIVE, state_at=state_at, now=books.now)
    return plan


# --- handlers --------------------------------------------------------------------------------


def _checkout_completed(
    session: Session, checkout: dict[str, Any], books: BooksContext, created: datetime
) -> str:
    return _checkout_outcome(apply_checkout_session(session, checkout, books, state_at=created))


def _checkout_outcome(donation: Donation | None) -> str:
    if donation is None:
        return "ignored: checkout session not opened by this app"
    return f"donation {donation.id} {donation.status}"


def _checkout_settled(
    session: Session, checkout: dict[str, Any], books: BooksContext, created: datetime
) -> str:
    # Days after the donor paid: the gift keeps the day they paid, as Stripe recorded it.
    return _checkout_outcome(apply_checkout_session(session, checkout, books, fallback_at=created))


def _checkout_failed(
    session: Session, checkout: dict[str, Any], books: BooksContext, created: datetime
) -> str:
    donation = _checkout_donation(session, checkout)
    if donation is None:
        return "ignored: checkout session not opened by this app"
    _link(donation, books, stripe_checkout_session_id=str(checkout.get("id") or "") or None)
    expired = checkout.get("status") == "expired"
    status = DonationStatus.EXPIRED if expired else DonationStatus.FAILED
    moved = advance_donation(donation, status, now=books.now)
    return f"donation {donation.id} {'-> ' if moved else 'stays '}{donation.status}"


def _unrecorded_subscription(
    books: BooksContext, subscription_id: str, metadata: Mapping[str, str] | None
) -> str:
    """For an event about a subscription with no plan here yet: the "ignored" outcome when
    it was not opened by this app, decided from its metadata (copied onto its invoices;
    every subscription we open names its donation there) or else by asking Stripe.
    Raises `WaitFor` (park until its plan is recorded) when it is ours, or nobody can
    tell now."""
    ours: bool | None = None
    if metadata is not None:
        ours = _metadata_donation_id(metadata) is not None
    elif books.gateway is not None:
        try:
            found = books.gateway.retrieve_subscription(subscription_id)
            ours = _metadata_donation_id(f.metadata(found)) is not None
        except StripeUnavailable:
            ours = None
    if ours is False:
        return "ignored: subscription not opened by this app"
    raise WaitFor("subscription not recorded yet", [wait_key("sub", subscription_id)])


def _invoice_paid(
    session: Session, invoice: dict[str, Any], books: BooksContext, created: datetime
) -> str:
    subscription_id = f.invoice_subscription_id(invoice)
    if not subscription_id:
        return "ignored: invoice without subscription"
    if f.invoice_amount_paid(invoice) <= 0:
        return "ignored: nothing paid"
    invoice_id = str(invoice["id"])
    paid_at = f.invoice_paid_at(invoice) or created
    donation = _donation_by(session, Donation.stripe_invoice_id, invoice_id)
    plan = _plan_by_subscription(session, subscription_id)
    if donation is None and f.invoice_is_first(invoice):
        donation = _first_payment_donation(session, invoice, subscription_id, plan, books)
        if donation is not None:
            _link(donation, books, stripe_invoice_id=invoice_id)
            plan = _ensure_plan_for(session, donation, subscription_id, books, paid_at)
            donation.plan = plan
            donation.kind = DonationKind.RECURRING
    if donation is None:
        if plan is None:
            # A payment of a plan whose checkout has not reached us (yet): adopt it when
            # the subscription names one of our donations (other subscriptions on the
            # same Stripe account are not gifts); wait when nobody can tell.
            ours = _first_payment_donation(session, invoice, subscription_id, None, books)
            if ours is None:
                return _unrecorded_subscription(
                    books, subscription_id, f.invoice_subscription_metadata_known(invoice)
                )
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
            created_at=books.now,
        )
        session.add(donation)
        session.flush()
        _link(donation, books, stripe_invoice_id=invoice_id)
    _link_payment_ids(session, donation, invoice, books)
    if plan is not None:
        advance_plan(plan, PlanStatus.ACTIVE, state_at=created, now=books.now)
        if plan.last_failed_at is not None and as_utc(plan.last_failed_at) <= as_utc(paid_at):
            plan.last_failed_at = None
        period_end = f.dig(invoice, "lines", "data")
        if period_end:
            end = f.timestamp(f.dig(period_end[0], "period", "end"))
            if end and (plan.current_period_end is None or end > as_utc(plan.current_period_end)):
                plan.current_period_end = end
    moved = record_payment(session, donation, books, paid_at)
    return f"donation {donation.id} {'paid' if moved else 'already paid'}"


def _first_payment_donation(
    session: Session,
    invoice: Mapping[str, Any],
    subscription_id: str,
    plan: Plan | None,
    books: BooksContext,
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
        return _donation_from_metadata(session, f.metadata(subscription), customer_id=customer_id)
    return None


def _link_payment_ids(
    session: Session, donation: Donation, invoice: Mapping[str, Any], books: BooksContext
) -> None:
    """Remember which PaymentIntent and charge paid the invoice, so a later refund or
    dispute (which names only those) finds this donation. When Stripe cannot say now, a
    refund that comes later asks again (`_payment_of`)."""
    intent = f.invoice_payment_intent_id(invoice)
    if intent is None and books.gateway is not None:
        try:
            intent = books.gateway.invoice_payment_intent(str(invoice["id"]))
        except StripeUnavailable:
            intent = None
    if intent and donation.stripe_payment_intent_id is None:
        taken = session.scalar(
            select(Donation.id).where(Donation.stripe_payment_intent_id == intent)
        )
        if taken is None:
            _link(donation, books, stripe_payment_intent_id=intent)
    _link(donation, books, stripe_charge_id=f.invoice_charge_id(invoice))


def _record_failure(
    session: Session, plan: Plan, invoice: dict[str, Any], created: datetime
) -> bool:
    """One `PlanFailure` per failed invoice, dated by its earliest failed attempt seen;
    True when this is the first word of that invoice failing."""
    invoice_id = str(invoice.get("id") or "")
    if not invoice_id:
        return False
    failure = locked(
        session, select(PlanFailure).where(PlanFailure.stripe_invoice_id == invoice_id)
    )
    if failure is not None:
        if created < as_utc(failure.failed_at):
            failure.failed_at = created
        return False
    session.add(PlanFailure(plan_id=plan.id, stripe_invoice_id=invoice_id, failed_at=created))
    session.flush()
    return True


def _invoice_failed(
    session: Session, invoice: dict[str, Any], books: BooksContext, created: datetime
) -> str:
    if f.invoice_is_first(invoice):
        return "ignored: first payment (Checkout shows the donor the error)"
    subscription_id = f.invoice_subscription_id(invoice)
    if not subscription_id:
        return "ignored: invoice without subscription"
    plan = _plan_by_subscription(session, subscription_id)
    if plan is None:
        return _unrecorded_subscription(
            books, subscription_id, f.invoice_subscription_metadata_known(invoice)
        )
    advance_plan(plan, PlanStatus.PAST_DUE, state_at=created, now=books.now)
    last_paid = session.scalar(
        select(func.max(Donation.paid_at)).where(
            Donation.plan_id == plan.id, Donation.status == DonationStatus.PAID
        )
    )
    # The latest failure stands until a payment at or after it: whichever came first.
    if last_paid is None or created > as_utc(last_paid):
        plan.last_failed_at = max(as_utc(plan.last_failed_at or created), created)
    if not _record_failure(session, plan, invoice, created):
        # Stripe retries a failed renewal several times, one event each: one email.
        return f"plan {plan.id} past due (invoice known, no email)"
    books._queued(
        mail.queue_payment_failed_email(
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


def _subscription_changed(
    session: Session, subscription: dict[str, Any], books: BooksContext, created: datetime
) -> str:
    subscription_id = str(subscription["id"])
    plan = _plan_by_subscription(session, subscription_id)
    if plan is None:
        return _unrecorded_subscription(books, subscription_id, f.metadata_known(subscription))
    return apply_subscription_state(plan, subscription, books, state_at=created)


def apply_subscription_state(
    plan: Plan, subscription: Mapping[str, Any], books: BooksContext, *, state_at: datetime
) -> str:
    """Bring a plan in line with a subscription object as of `state_at`: its status by
    `advance_plan`, its terms (amount, interval, cancel at period end) when this is the
    newest subscription object applied."""
    status = PlanStatus.from_stripe(str(subscription.get("status") or ""))
    advance_plan(plan, status, state_at=state_at, now=books.now)
    end = f.subscription_period_end(subscription)
    if end and (plan.current_period_end is None or end > as_utc(plan.current_period_end)):
        plan.current_period_end = end
    if plan.terms_at is not None and state_at <= as_utc(plan.terms_at):
        return f"plan {plan.id} {plan.status} (older terms ignored)"
    amount, currency, interval = f.subscription_price(subscription)
    if amount:
        plan.amount_minor = amount
    if currency:
        plan.currency = currency
    if interval in ("month", "year"):
        plan.interval = Frequency(interval)
    plan.cancel_at_period_end = bool(subscription.get("cancel_at_period_end"))
    plan.terms_at = state_at
    plan.updated_at = books.now
    return f"plan {plan.id} {plan.status}"


def _payment_of(
    session: Session,
    books: BooksContext,
    *,
    intent: str | None,
    charge_id: str | None,
    invoice_id: str | None,
    metadata: Mapping[str, str],
) -> Donation | None:
    """The donation a refund or dispute is about: by PaymentIntent, charge or invoice, and
    for a plan's payment whose PaymentIntent was never linked, by the invoice Stripe names.

    None when it is not one of our gifts: our one-time payments carry the donation id in
    their PaymentIntent's metadata (copied onto the charge), a plan's payments belong to an
    invoice; Stripe is asked (once) when the object does not say. Raises `WaitFor` when it
    is, or may be, ours and not recorded yet."""
    donation = (
        _donation_by(session, Donation.stripe_payment_intent_id, intent)
        or _donation_by(session, Donation.stripe_charge_id, charge_id)
        or _donation_by(session, Donation.stripe_invoice_id, invoice_id)
    )
    ours: bool | None = True if _metadata_donation_id(metadata) is not None else None
    if donation is None and intent and not invoice_id and books.gateway is not None:
        try:
            invoice_id = books.gateway.invoice_for_payment_intent(intent)
            if invoice_id is None and ours is None:
                intent_metadata = books.gateway.payment_intent_metadata(intent)
                ours = _metadata_donation_id(intent_metadata) is not None
        except StripeUnavailable:
            pass  # nobody can tell now: wait
        donation = _donation_by(session, Donation.stripe_invoice_id, invoice_id)
    if donation is not None:
        _link(donation, books, stripe_payment_intent_id=intent, stripe_charge_id=charge_id)
        return donation
    if ours is False and not invoice_id:
        return None
    raise WaitFor(
        "payment not recorded yet",
        [wait_key("pi", intent), wait_key("ch", charge_id), wait_key("in", invoice_id)],
    )


def _charge_refunded(
    session: Session, charge: dict[str, Any], books: BooksContext, created: datetime
) -> str:
    donation = _payment_of(
        session,
        books,
        intent=f.charge_payment_intent_id(charge),
        charge_id=f.object_id(charge.get("id")),
        invoice_id=f.charge_invoice_id(charge),
        metadata=f.metadata(charge),
    )
    if donation is None:
        return "ignored: charge not opened by this app (Stripe says)"
    refunded = int(charge.get("amount_refunded") or 0)
    # Stripe's running total of refunds: the largest seen is the latest, in any order.
    if min(refunded, donation.amount_minor) > donation.refunded_minor:
        donation.refunded_minor = min(refunded, donation.amount_minor)
        donation.refund_seen_at = None
        donation.updated_at = books.now
    return f"donation {donation.id} refunded {donation.refunded_minor}"


def _dispute(
    session: Session, dispute: dict[str, Any], books: BooksContext, created: datetime
) -> str:
    intent = f.object_id(dispute.get("payment_intent"))
    charge_id = f.object_id(dispute.get("charge"))
    donation = _payment_of(
        session, books, intent=intent, charge_id=charge_id, invoice_id=None, metadata={}
    )
    if donation is None:
        return "ignored: dispute on a charge not opened by this app (Stripe says)"
    try:
        status = DisputeStatus(str(dispute.get("status") or ""))
    except ValueError:
        return f"donation {donation.id}: unknown dispute status {dispute.get('status')!r}"
    dispute_id = str(dispute.get("id") or f"dp_for_{charge_id or intent}")
    row = locked(session, select(Dispute).where(Dispute.id == dispute_id))
    amount = min(int(dispute.get("amount") or 0), donation.amount_minor)
    if row is None:
        row = Dispute(
            id=dispute_id,
            donation_id=donation.id,
            status=status,
            amount_minor=amount,
            state_at=created,
        )
        session.add(row)
    elif not advance_dispute(row, status, amount_minor=amount, state_at=created):
        return f"donation {donation.id} dispute {dispute_id} stays {row.status} (older state)"
    session.flush()
    held = session.scalar(
        select(func.coalesce(func.sum(Dispute.amount_minor), 0)).where(
            Dispute.donation_id == donation.id,
            Dispute.status.in_([s for s in DisputeStatus if s.withdraws_funds]),
        )
    )
    disputed = min(int(held or 0), donation.amount_minor)
    if disputed != donation.disputed_minor:
        donation.disputed_minor = disputed
        donation.refund_seen_at = None
        donation.updated_at = books.now
    return f"donation {donation.id} dispute {status}, disputed {donation.disputed_minor}"


#: The handler of each Stripe event type this app applies (read-only; any other type is
#: ignored by `apply_event`).
HANDLERS: Mapping[str, Handler] = MappingProxyType(
    {
        "checkout.session.completed": _checkout_completed,
        "checkout.session.async_payment_succeeded": _checkout_settled,
        "checkout.session.async_payment_failed": _checkout_failed,
        "checkout.session.expired": _checkout_failed,
        "invoice.paid": _invoice_paid,
        "invoice.payment_failed": _invoice_failed,
        "customer.subscription.created": _subscription_changed,
        "customer.subscription.updated": _subscription_changed,
        "customer.subscription.deleted": _subscription_changed,
        "charge.refunded": _charge_refunded,
        "charge.dispute.created": _dispute,
        "charge.dispute.updated": _dispute,
        "charge.dispute.closed": _dispute,
        "charge.dispute.funds_withdrawn": _dispute,
        "charge.dispute.funds_reinstated": _dispute,
    }
)

#: Event types to enable on the Stripe webhook endpoint (and that reconciliation lists).
HANDLED_EVENT_TYPES = sorted(HANDLERS)
