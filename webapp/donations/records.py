"""Donors, receipt numbers and the moves of donations, plans and disputes: the records every
part of the donations feature shares (checkout, the webhook books, self-service, staff pages).
Private to the feature; other code uses `webapp.donations.services`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp.core.addresses import normalise_email
from webapp.core.clock import as_utc
from webapp.db import get_or_create_row
from webapp.donations.models import (
    DISPUTE_MOVES,
    DONATION_MOVES,
    PLAN_MOVES,
    Dispute,
    DisputeStatus,
    Donation,
    DonationSettings,
    DonationStatus,
    Donor,
    Plan,
    PlanStatus,
    ReceiptCounter,
)

#: Flask-Limiter limits for opening a checkout, per client IP.
DEFAULT_DONATE_RATE_LIMIT = "10 per minute;60 per hour"
#: At most this many checkouts per email address per hour (many IPs, one address).
DEFAULT_DONATE_EMAIL_LIMIT = "10 per hour"
#: Limits for asking for a self-service link, per client IP.
DEFAULT_DONOR_LINK_RATE_LIMIT = "5 per minute;30 per hour"


@dataclass(frozen=True)
class DonationConfig:
    """The configuration donation services depend on, gathered once per call site."""

    #: Public base URL of the app (no trailing slash).
    base_url: str
    #: Signs self-service links.
    secret: str
    #: Languages the site offers; the first is the default.
    languages: tuple[str, ...]
    #: How long a self-service link works.
    donor_link_max_age: timedelta

    def language_or_default(self, language: str | None) -> str:
        """`language` when offered, else the default language."""
        return language if language in self.languages else (self.languages or ("en",))[0]


def donation_config(config: Mapping[str, Any]) -> DonationConfig:
    """`DonationConfig` from a Flask app's config."""
    return DonationConfig(
        base_url=str(config["BASE_URL"]).rstrip("/"),
        secret=str(config["SECRET_KEY"]),
        languages=tuple(config["LANGUAGES"]),
        donor_link_max_age=timedelta(hours=int(config.get("DONOR_LINK_MAX_AGE_HOURS", 72))),
    )


def get_donation_settings(session: Session) -> DonationSettings:
    """The donation settings row, created with defaults on first use (race-safe)."""
    return get_or_create_row(session, DonationSettings)


def find_donor(session: Session, email: str) -> Donor | None:
    """The donor with this address (any spelling of it), or None."""
    try:
        normalised = normalise_email(email)
    except ValueError:
        return None
    return session.scalar(select(Donor).where(Donor.email == normalised))


def find_or_create_donor(
    session: Session, email: str, *, name: str = "", language: str = "en", now: datetime
) -> Donor:
    """The donor with this address, created when new. A given name and the language of the
    latest gift replace the stored ones. Raises `InvalidEmail` for an unusable address."""
    normalised = normalise_email(email)
    donor = session.scalar(select(Donor).where(Donor.email == normalised))
    if donor is None:
        candidate = Donor(email=normalised, name=name[:200], language=language, created_at=now)
        try:
            with session.begin_nested():
                session.add(candidate)
            return candidate
        except IntegrityError:
            # A parallel request created the same donor a moment ago.
            donor = session.scalar(select(Donor).where(Donor.email == normalised))
            assert donor is not None
    if name and donor.name != name[:200]:
        donor.name = name[:200]
    donor.language = language
    donor.updated_at = now
    return donor


def advance_donation(donation: Donation, status: DonationStatus, *, now: datetime) -> bool:
    """Move a donation to `status` when `DONATION_MOVES` allows it (forward); False (and
    nothing changes) for a step back or sideways, e.g. a late "failed" after "paid". Paying
    goes through the books (`record_payment`), which also give the receipt number."""
    if not DONATION_MOVES.allows(DonationStatus(donation.status), status):
        return False
    DONATION_MOVES.move(donation, status)
    donation.updated_at = now
    return True


def assign_receipt_number(session: Session, donation: Donation) -> None:
    """Give a paid donation the next receipt number (once). The counter row is updated in
    the caller's transaction, so numbers follow payments without gaps or repeats."""
    if donation.receipt_seq is not None:
        return
    counter = ReceiptCounter.__table__
    bump = (
        update(counter)  # type: ignore[arg-type]  # a Table, typed as its FromClause base
        .where(counter.c.id == 1)
        .values(last=counter.c.last + 1)
        .returning(counter.c.last)
    )
    # On the connection (Core): the counter is no ORM object, and nothing needs flushing
    # first, so the webhook's hot path pays one small statement.
    number = session.connection().execute(bump).scalar()
    if number is None:
        # First receipt of a database made without the migration's counter row.
        start = int(session.scalar(select(func.max(Donation.receipt_seq))) or 0) + 1
        try:
            with session.begin_nested():
                session.add(ReceiptCounter(id=1, last=start))
            number = start
        except IntegrityError:
            number = session.connection().execute(bump).scalar_one()
    donation.receipt_seq = int(number)


def sync_receipt_counter(session: Session) -> None:
    """Move the counter past every number given (after bulk loads that numbered their own
    rows, like the demo history)."""
    highest = int(session.scalar(select(func.max(Donation.receipt_seq))) or 0)
    counter = session.get(ReceiptCounter, 1)
    if counter is None:
        session.add(ReceiptCounter(id=1, last=highest))
    elif counter.last < highest:
        counter.last = highest
    session.flush()


def number_unnumbered_receipts(session: Session) -> int:
    """Give every paid donation without a receipt number one, oldest payment first (demo
    data and staff imports write paid rows directly). Returns how many were numbered."""
    rows = session.scalars(
        select(Donation)
        .where(Donation.status == DonationStatus.PAID, Donation.receipt_seq.is_(None))
        .order_by(Donation.paid_at, Donation.id)
    ).all()
    for donation in rows:
        assign_receipt_number(session, donation)
    return len(rows)


def earliest(current: datetime | None, candidate: datetime | None) -> datetime | None:
    """The earlier of two moments (either may be unknown): dates kept this way end the same
    whatever order their events came in."""
    if candidate is None:
        return current
    if current is None:
        return candidate
    return min(as_utc(current), as_utc(candidate))


def advance_plan(plan: Plan, status: PlanStatus, *, state_at: datetime, now: datetime) -> bool:
    """Apply a plan status that Stripe (or the donor, through us) produced at `state_at`.

    Any order of the same states gives the same plan. A move `PLAN_MOVES` lacks (out of
    cancelled, back to incomplete) is ignored; a move it allows one way only (forward)
    always applies; between states it allows both ways (active and past due, or a state
    and itself) the newer event wins, then `PlanStatus.precedence` within one second.
    `stripe_state_at` keeps the time of the state applied. `started_at` and `canceled_at`
    are the earliest times it was seen active and cancelled. Returns True when the status
    moved.
    """
    state_at = as_utc(state_at)
    if status == PlanStatus.CANCELED:
        plan.canceled_at = earliest(plan.canceled_at, state_at)
    if status == PlanStatus.ACTIVE:
        plan.started_at = earliest(plan.started_at, state_at)
    current = PlanStatus(plan.status)
    known_at = as_utc(plan.stripe_state_at) if plan.stripe_state_at else None
    if not PLAN_MOVES.supersedes(
        current, known_at, status, state_at, precedence=lambda state: state.precedence
    ):
        return False
    plan.stripe_state_at = state_at
    plan.updated_at = now
    if status == current:
        return False
    PLAN_MOVES.move(plan, status)
    return True


def advance_dispute(
    dispute: Dispute, status: DisputeStatus, *, amount_minor: int, state_at: datetime
) -> bool:
    """Apply a dispute state that Stripe produced at `state_at`, with its amount.

    As for plans, any order of the same events gives the same dispute: a move
    `DISPUTE_MOVES` lacks (a closed dispute reopening) is ignored, a one-way move (open to
    closed) always applies, and between peers the newer event wins, then
    `DisputeStatus.precedence`. Returns False when the stored state stays (an older one)."""
    current = DisputeStatus(dispute.status)
    if not DISPUTE_MOVES.supersedes(
        current,
        as_utc(dispute.state_at),
        status,
        as_utc(state_at),
        precedence=lambda state: state.precedence,
    ):
        return False
    if status != current:
        DISPUTE_MOVES.move(dispute, status)
    dispute.amount_minor, dispute.state_at = amount_minor, state_at
    return True
