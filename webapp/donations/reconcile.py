"""Nightly reconciliation with Stripe: apply the events that never reached the webhook.

Stripe keeps events for 30 days and a webhook endpoint may be down, misconfigured or
answered with errors for longer than Stripe retries. This lists the recent events of the
types the books handle and applies each one that has no `StripeEvent` row yet, each in its
own transaction, through the same `apply_event` as the webhook (so nothing counts twice).
It then tries every parked event again (Stripe can now say what it is about, or the object
arrived by a path that could not announce it), and settles old pending checkouts by asking
Stripe for their session, dated by the payment's own time as Stripe recorded it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from webapp.db import Database, begin_writing
from webapp.donations.books import (
    HANDLED_EVENT_TYPES,
    BooksContext,
    DuplicateEvent,
    apply_checkout_session,
    apply_event,
    apply_parked,
    apply_waiting,
)
from webapp.donations.gateway import StripeGateway, StripeUnavailable
from webapp.donations.models import Donation, DonationStatus, StripeEvent
from webapp.donations.records import advance_donation

log = logging.getLogger("readership.donations")


@dataclass
class ReconcileResult:
    """What a reconciliation run did."""

    seen: int = 0
    applied: int = 0
    failed: int = 0
    parked_applied: int = 0
    checkouts_settled: int = 0

    def __str__(self) -> str:
        return (
            f"{self.seen} events seen, {self.applied} applied, {self.failed} failed, "
            f"{self.parked_applied} parked events applied, "
            f"{self.checkouts_settled} pending checkouts settled"
        )


def reconcile_stripe(
    database: Database,
    gateway: StripeGateway,
    make_books: Callable[[], BooksContext],
    *,
    now: datetime,
    lookback: timedelta = timedelta(days=3),
) -> ReconcileResult:
    """Apply missed events created in the last `lookback`, then settle pending checkouts
    older than an hour. Returns counts; failures are logged and left for the next run.
    The caller delivers the emails queued in `BooksContext.queued` of each run."""
    result = ReconcileResult()
    events = list(gateway.list_events(now - lookback, HANDLED_EVENT_TYPES))
    # Stripe lists newest first; apply in the order they happened.
    for event in reversed(events):
        result.seen += 1
        with database.session() as session:
            if session.get(StripeEvent, str(event["id"])) is not None:
                continue
            try:
                apply_event(session, event, make_books(), via="reconcile")
                session.commit()
                result.applied += 1
            except DuplicateEvent:
                session.rollback()
            except Exception:
                session.rollback()
                result.failed += 1
                log.exception("reconcile: event %s failed", event.get("id"))
    with database.session() as session:
        try:
            result.parked_applied = apply_parked(session, make_books())
            session.commit()
        except Exception:
            session.rollback()
            log.exception("reconcile: parked events could not be applied")
    result.checkouts_settled = _settle_pending_checkouts(database, gateway, make_books, now=now)
    return result


def _settle_pending_checkouts(
    database: Database,
    gateway: StripeGateway,
    make_books: Callable[[], BooksContext],
    *,
    now: datetime,
) -> int:
    """Pending donations whose checkout is over an hour old: paid ones are recorded,
    expired ones marked expired (Checkout Sessions expire after 24 hours)."""
    settled = 0
    with database.session() as session:
        candidates = session.execute(
            select(Donation.id, Donation.stripe_checkout_session_id).where(
                Donation.status.in_([DonationStatus.PENDING, DonationStatus.PROCESSING]),
                Donation.stripe_checkout_session_id.is_not(None),
                Donation.created_at < now - timedelta(hours=1),
                Donation.created_at > now - timedelta(days=30),
            )
        ).all()
    for donation_id, checkout_id in candidates:
        try:
            checkout = gateway.retrieve_checkout_session(str(checkout_id))
        except StripeUnavailable:
            log.warning("reconcile: checkout %s could not be retrieved", checkout_id)
            continue
        with database.session() as session:
            try:
                begin_writing(session)
                if checkout.get("payment_status") == "paid":
                    books = make_books()
                    apply_checkout_session(session, checkout, books)
                    apply_waiting(session, books)
                    settled += 1
                elif checkout.get("status") == "expired":
                    donation = session.get(Donation, donation_id)
                    if donation is not None and advance_donation(
                        donation, DonationStatus.EXPIRED, now=now
                    ):
                        settled += 1
                session.commit()
            except Exception:
                session.rollback()
                log.exception("reconcile: checkout %s could not be settled", checkout_id)
    return settled
