"""Read-only queries behind the staff donation pages: the filtered list, its totals and CSV,
and one donor's page, and the Stripe events received."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import ColumnElement, Select, case, func, or_, select
from sqlalchemy.orm import Session, defer, joinedload, selectinload

from webapp.core.csv_out import CsvWriter, PlainNumber
from webapp.core.money import format_plain
from webapp.donations.models import Campaign, Donation, DonationStatus, Donor, Plan, StripeEvent
from webapp.outbox.models import OutboxMessage

PAGE_SIZE = 50


@dataclass(frozen=True)
class DonationFilter:
    """What the staff list is narrowed to (empty values mean "any")."""

    q: str = ""
    status: str = ""
    kind: str = ""
    frequency: str = ""
    currency: str = ""
    campaign_id: int | None = None
    date_from: date | None = None
    date_to: date | None = None
    unseen_refunds: bool = False


def _filtered(flt: DonationFilter) -> Select[tuple[Donation]]:
    stmt = select(Donation).join(Donation.donor)
    if flt.status:
        stmt = stmt.where(Donation.status == flt.status)
    if flt.kind:
        stmt = stmt.where(Donation.kind == flt.kind)
    if flt.frequency:
        stmt = stmt.where(Donation.frequency == flt.frequency)
    if flt.currency:
        stmt = stmt.where(Donation.currency == flt.currency)
    if flt.campaign_id:
        stmt = stmt.where(Donation.campaign_id == flt.campaign_id)
    moment = func.coalesce(Donation.paid_at, Donation.created_at)
    if flt.date_from:
        stmt = stmt.where(moment >= datetime.combine(flt.date_from, time(), UTC))
    if flt.date_to:
        stmt = stmt.where(moment < datetime.combine(flt.date_to + timedelta(days=1), time(), UTC))
    if flt.unseen_refunds:
        stmt = stmt.where(
            (Donation.refunded_minor > 0) | (Donation.disputed_minor > 0),
            Donation.refund_seen_at.is_(None),
        )
    q = flt.q.strip()
    if q:
        stmt = stmt.where(_search(q))
    return stmt


def _search(q: str) -> ColumnElement[bool]:
    lowered = q.lower()
    if lowered.startswith("r-") and lowered[2:].isdigit():
        return Donation.receipt_seq == int(lowered[2:])
    prefixes = ("cs_", "in_", "pi_", "ch_", "sub_", "cus_")
    if lowered.startswith(prefixes):
        return or_(
            Donation.stripe_checkout_session_id == q,
            Donation.stripe_invoice_id == q,
            Donation.stripe_payment_intent_id == q,
            Donation.stripe_charge_id == q,
            Donor.stripe_customer_id == q,
            Donation.plan.has(stripe_subscription_id=q),
        )
    escaped = lowered.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return or_(
        Donor.email.like(f"{escaped}%", escape="\\"),
        func.lower(Donor.name).like(f"%{escaped}%", escape="\\"),
    )


@dataclass(frozen=True)
class DonationPage:
    """One page of the list, with totals of the whole filtered set."""

    rows: list[Donation]
    total: int
    page: int
    pages: int
    #: currency -> (gross, refunded or disputed, net) in minor units.
    totals: dict[str, tuple[int, int, int]]


def list_donations(session: Session, flt: DonationFilter, page: int = 1) -> DonationPage:
    """The filtered donations, newest first, `PAGE_SIZE` a page."""
    base = _filtered(flt)
    total = count_donations(session, flt)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), pages)
    rows = list(
        session.scalars(
            base.options(joinedload(Donation.donor), joinedload(Donation.campaign))
            .order_by(
                func.coalesce(Donation.paid_at, Donation.created_at).desc(), Donation.id.desc()
            )
            .limit(PAGE_SIZE)
            .offset((page - 1) * PAGE_SIZE)
        ).unique()
    )
    return DonationPage(rows, total, page, pages, _totals(session, base))


def _totals(session: Session, base: Select[tuple[Donation]]) -> dict[str, tuple[int, int, int]]:
    sub = base.where(Donation.status == DonationStatus.PAID).subquery()
    taken = sub.c.refunded_minor + sub.c.disputed_minor
    # Like `Donation.net_minor`: a gift never counts below zero.
    out = case((taken > sub.c.amount_minor, sub.c.amount_minor), else_=taken)
    return {
        currency: (int(gross), int(removed), int(gross) - int(removed))
        for currency, gross, removed in session.execute(
            select(
                sub.c.currency,
                func.coalesce(func.sum(sub.c.amount_minor), 0),
                func.coalesce(func.sum(out), 0),
            )
            .group_by(sub.c.currency)
            .order_by(sub.c.currency)
        )
    }


def count_donations(session: Session, flt: DonationFilter) -> int:
    """How many donations the filter matches."""
    return int(session.scalar(select(func.count()).select_from(_filtered(flt).subquery())) or 0)


CSV_COLUMNS = (
    "receipt_number",
    "date_utc",
    "status",
    "kind",
    "frequency",
    "currency",
    "amount",
    "fee_covered",
    "refunded",
    "disputed",
    "net",
    "donor_email",
    "donor_name",
    "anonymous",
    "campaign",
    "source",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "offline_method",
    "stripe_checkout_session",
    "stripe_invoice",
    "stripe_payment_intent",
    "stripe_charge",
    "stripe_subscription",
    "stripe_customer",
    "recorded_by_staff_id",
    "note",
)


def donations_csv(session: Session, flt: DonationFilter) -> Iterator[str]:
    """The filtered donations as CSV text, streamed in chunks, oldest first.

    The header row names every column (`CSV_COLUMNS`): amounts are plain decimals in major
    units of `currency` ("10.50"), `net` is the amount less refunds and disputes, dates are
    UTC (paid, else created), `anonymous` is yes/no. Text cells that a spreadsheet would
    run as formulas (a donor named "=HYPERLINK(…)") get a leading `'`; amounts, written
    from numbers, are left as numbers (`webapp.core.csv_out`).
    """
    buffer = io.StringIO()
    writer = CsvWriter(buffer)
    writer.writerow(CSV_COLUMNS)
    # selectinload, not joinedload: rows are fetched `yield_per` at a time, so memory stays
    # flat however many donations match.
    stmt = (
        _filtered(flt)
        .options(
            selectinload(Donation.donor),
            selectinload(Donation.campaign),
            selectinload(Donation.plan),
        )
        .order_by(Donation.id)
        .execution_options(yield_per=500)
    )
    for index, donation in enumerate(session.scalars(stmt)):
        cur = donation.currency
        moment = donation.paid_at or donation.created_at
        writer.writerow(
            [
                donation.receipt_number,
                moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "",
                donation.status,
                donation.kind,
                donation.frequency,
                cur,
                PlainNumber(format_plain(donation.amount_minor, cur)),
                PlainNumber(format_plain(donation.fee_covered_minor, cur)),
                PlainNumber(format_plain(donation.refunded_minor, cur)),
                PlainNumber(format_plain(donation.disputed_minor, cur)),
                PlainNumber(format_plain(donation.net_minor, cur)),
                donation.donor.email,
                donation.donor.name,
                "yes" if donation.is_anonymous else "no",
                donation.campaign.slug if donation.campaign else "",
                donation.source,
                donation.utm_source,
                donation.utm_medium,
                donation.utm_campaign,
                donation.offline_method or "",
                donation.stripe_checkout_session_id or "",
                donation.stripe_invoice_id or "",
                donation.stripe_payment_intent_id or "",
                donation.stripe_charge_id or "",
                donation.plan.stripe_subscription_id if donation.plan else "",
                donation.donor.stripe_customer_id or "",
                donation.recorded_by_id or "",
                donation.note,
            ]
        )
        if index % 500 == 499:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def campaigns(session: Session) -> list[Campaign]:
    """Every campaign, newest first."""
    return list(session.scalars(select(Campaign).order_by(Campaign.id.desc())))


@dataclass(frozen=True)
class DonorOverview:
    """Everything the staff donor page shows about one donor."""

    donor: Donor
    gifts: list[Donation]
    plans: list[Plan]
    #: Emails sent to the donor's address, newest first (at most `EMAILS_SHOWN`).
    emails: list[OutboxMessage]
    #: currency -> net of the paid gifts, in minor units.
    totals: dict[str, int]


EMAILS_SHOWN = 100


def donor_overview(session: Session, donor_id: int) -> DonorOverview | None:
    """One donor's gifts, plans, emails and net totals; None when there is no such donor."""
    donor = session.get(Donor, donor_id)
    if donor is None:
        return None
    gifts = list(
        session.scalars(
            select(Donation)
            .where(Donation.donor_id == donor_id)
            .options(joinedload(Donation.campaign))
            .order_by(
                func.coalesce(Donation.paid_at, Donation.created_at).desc(), Donation.id.desc()
            )
        )
    )
    plans = list(
        session.scalars(select(Plan).where(Plan.donor_id == donor_id).order_by(Plan.id.desc()))
    )
    emails = list(
        session.scalars(
            select(OutboxMessage)
            .options(defer(OutboxMessage.raw))  # the whole message; the page shows headers
            .where(OutboxMessage.to_address == donor.email)
            .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
            .limit(EMAILS_SHOWN)
        )
    )
    totals: dict[str, int] = {}
    for gift in gifts:
        if gift.status == DonationStatus.PAID:
            totals[gift.currency] = totals.get(gift.currency, 0) + gift.net_minor
    return DonorOverview(donor, gifts, plans, emails, dict(sorted(totals.items())))


@dataclass(frozen=True)
class EventPage:
    """One page of Stripe events received, newest first."""

    events: list[StripeEvent]
    parked: int
    has_more: bool
    before: str | None


def list_stripe_events(
    session: Session, *, parked_only: bool, before: str | None, limit: int = PAGE_SIZE
) -> EventPage:
    """Stripe events as received, newest first (keyset paging on the event id's time),
    optionally only those parked waiting for their object; with the parked count."""
    stmt = select(StripeEvent).order_by(StripeEvent.created_at.desc(), StripeEvent.id.desc())
    if parked_only:
        stmt = stmt.where(StripeEvent.parked.is_(True))
    if before:
        anchor = session.get(StripeEvent, before)
        if anchor is not None:
            stmt = stmt.where(
                (StripeEvent.created_at < anchor.created_at)
                | ((StripeEvent.created_at == anchor.created_at) & (StripeEvent.id < anchor.id))
            )
    rows = list(session.scalars(stmt.limit(limit + 1)))
    parked = int(
        session.scalar(
            select(func.count()).select_from(StripeEvent).where(StripeEvent.parked.is_(True))
        )
        or 0
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return EventPage(rows, parked, more, rows[-1].id if more and rows else None)
