"""Read-only queries behind the staff donation pages: the filtered list, its totals and CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session, joinedload

from webapp.core.money import format_plain
from webapp.donations.models import Campaign, Donation, Donor

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


def _search(q: str) -> object:
    lowered = q.lower()
    if lowered.startswith("r-") and lowered[2:].isdigit():
        return Donation.id == int(lowered[2:])
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
    total = int(session.scalar(select(func.count()).select_from(base.subquery())) or 0)
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
    sub = base.where(Donation.status == "paid").subquery()
    totals = {
        currency: (int(gross), int(out), int(gross) - int(out))
        for currency, gross, out in session.execute(
            select(
                sub.c.currency,
                func.coalesce(func.sum(sub.c.amount_minor), 0),
                func.coalesce(func.sum(sub.c.refunded_minor + sub.c.disputed_minor), 0),
            )
            .group_by(sub.c.currency)
            .order_by(sub.c.currency)
        )
    }
    return DonationPage(rows, total, page, pages, totals)


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
)


def donations_csv(session: Session, flt: DonationFilter) -> Iterator[str]:
    """The filtered donations as CSV text, streamed in chunks (header row first)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    stmt = _filtered(flt).options(joinedload(Donation.donor), joinedload(Donation.campaign))
    stmt = stmt.order_by(Donation.id)
    for index, donation in enumerate(session.scalars(stmt).unique()):
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
                format_plain(donation.amount_minor, cur),
                format_plain(donation.fee_covered_minor, cur),
                format_plain(donation.refunded_minor, cur),
                format_plain(donation.disputed_minor, cur),
                format_plain(donation.net_minor, cur),
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
            ]
        )
        if index % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def campaigns(session: Session) -> list[Campaign]:
    """Every campaign, newest first."""
    return list(session.scalars(select(Campaign).order_by(Campaign.id.desc())))
