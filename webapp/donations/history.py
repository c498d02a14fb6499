"""A large, believable donation history for demos and benchmarks:
`readership demo --donors 100000 --donations 1000000`.

Donors arrive over three years; about a third start a monthly or yearly plan (more in
December), which renews every period until the donor cancels (a few percent each month) —
some renewals fail first and recover, some failures end the plan. Everything else is
one-time gifts with a December peak, a few offline gifts, refunds and disputes, three
currencies, campaigns and source articles. Rows go in with bulk inserts, so a million
donations take a minute or two, not hours.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from webapp.donations.models import (
    Campaign,
    Donation,
    DonationKind,
    DonationStatus,
    Donor,
    Frequency,
    OfflineMethod,
    Plan,
    PlanFailure,
    PlanStatus,
)
from webapp.donations.records import sync_receipt_counter

#: Rows per INSERT batch.
BATCH = 10_000
#: How far back the history starts.
SPAN_DAYS = 3 * 365
#: Month weights (January first): giving peaks in December.
SEASON = [0.8, 0.8, 0.9, 0.9, 0.9, 0.8, 0.7, 0.7, 0.9, 1.0, 1.2, 2.4]
CURRENCIES = [("EUR", 0.6), ("USD", 0.3), ("GBP", 0.1)]
MONTHLY_AMOUNTS = [300, 500, 500, 1000, 1000, 1500, 2000, 5000]
YEARLY_AMOUNTS = [3000, 5000, 10000, 12000, 25000]
ONE_TIME_AMOUNTS = [500, 1000, 1000, 2000, 2500, 5000, 10000, 25000]
SOURCES = (
    [""] * 6
    + [f"/en/analysis/story-{n}" for n in range(40)]
    + [f"/ru/analysis/story-{n}" for n in range(20)]
)


@dataclass(frozen=True)
class HistoryResult:
    """What was written."""

    donors: int
    plans: int
    donations: int

    def __str__(self) -> str:
        return f"{self.donors} donors, {self.plans} plans, {self.donations} donations"


def _seasonal_moment(rng: random.Random, start: datetime, end: datetime) -> datetime:
    """A moment in [start, end), more likely in the heavier months."""
    span = (end - start).total_seconds()
    while True:
        moment = start + timedelta(seconds=rng.random() * span)
        if rng.random() * 2.4 < SEASON[moment.month - 1]:
            return moment


def _currency(rng: random.Random) -> str:
    return rng.choices([c for c, _ in CURRENCIES], [w for _, w in CURRENCIES])[0]


def generate_history(
    session: Session,
    *,
    donors: int,
    donations: int,
    now: datetime,
    seed: int = 2026,
    progress: Callable[[int], None] | None = None,
) -> HistoryResult:
    """Write `donors` donors and about `donations` donations (exactly, unless the plans'
    renewals alone exceed it, in which case fewer plans are made). Commits in batches."""
    rng = random.Random(seed)
    start = now - timedelta(days=SPAN_DAYS)
    first_donor = int(session.scalar(select(func.coalesce(func.max(Donor.id), 0))) or 0) + 1
    first_plan = int(session.scalar(select(func.coalesce(func.max(Plan.id), 0))) or 0) + 1
    campaign_ids = [c for c in session.scalars(select(Campaign.id))]
    tick = progress or (lambda _n: None)

    donor_rows = [_donor_row(rng, first_donor + offset, start, now) for offset in range(donors)]
    _insert(session, Donor, donor_rows, tick)

    # Plans: about a third of donors, fewer if their renewals would exceed the budget.
    plan_share = 0.33
    plans, payments = _plans(rng, donor_rows, first_plan, now, plan_share)
    while len(payments) > donations * 0.7 and plan_share > 0.01:
        plan_share /= 2
        plans, payments = _plans(rng, donor_rows, first_plan, now, plan_share)
    _insert(session, Plan, [p for p, _failures in plans], tick)
    _insert(session, PlanFailure, [f for _p, failures in plans for f in failures], tick)

    rows = payments
    remaining = max(0, donations - len(rows))
    rows.extend(_one_time_row(rng, donor_rows, campaign_ids, now) for _ in range(remaining))
    rng.shuffle(rows)
    _number_receipts(session, rows)
    _insert(session, Donation, rows, tick)
    sync_receipt_counter(session)
    session.commit()
    return HistoryResult(donors, len(plans), len(rows))


def _donor_row(rng: random.Random, donor_id: int, start: datetime, now: datetime) -> dict[str, Any]:
    created = _seasonal_moment(rng, start, now)
    return {
        "id": donor_id,
        "email": f"donor{donor_id}@history.example",
        "name": f"Demo Donor {donor_id}",
        "language": "ru" if rng.random() < 0.3 else "en",
        "created_at": created,
    }


def _one_time_row(
    rng: random.Random, donor_rows: list[dict[str, Any]], campaign_ids: list[int], now: datetime
) -> dict[str, Any]:
    """One one-time or offline gift by a random donor (refunds and disputes now and then)."""
    donor = donor_rows[rng.randrange(len(donor_rows))]
    paid = _seasonal_moment(rng, donor["created_at"], now)
    currency = _currency(rng)
    amount = rng.choice(ONE_TIME_AMOUNTS)
    offline = rng.random() < 0.02
    roll = rng.random()
    status = (
        DonationStatus.FAILED
        if roll < 0.01
        else DonationStatus.EXPIRED
        if roll < 0.015
        else DonationStatus.PAID
    )
    refunded = amount if status == DonationStatus.PAID and rng.random() < 0.02 else 0
    disputed = (
        amount if status == DonationStatus.PAID and not refunded and rng.random() < 0.003 else 0
    )
    return {
        "donor_id": donor["id"],
        "kind": DonationKind.OFFLINE if offline else DonationKind.ONE_TIME,
        "status": status,
        "frequency": Frequency.ONE_TIME,
        "amount_minor": amount,
        "currency": currency,
        "refunded_minor": refunded,
        "disputed_minor": disputed,
        "campaign_id": rng.choice(campaign_ids) if campaign_ids and rng.random() < 0.2 else None,
        "source": rng.choice(SOURCES),
        "language": donor["language"],
        "offline_method": OfflineMethod.BANK_TRANSFER if offline else None,
        "paid_at": paid if status == DonationStatus.PAID else None,
        "created_at": paid,
    }


def _number_receipts(session: Session, rows: list[dict[str, Any]]) -> None:
    """Receipt numbers follow the payments, as the books give them."""
    first_receipt = int(session.scalar(select(func.max(Donation.receipt_seq))) or 0) + 1
    paid_rows = [row for row in rows if row["status"] == DonationStatus.PAID]
    paid_rows.sort(key=lambda row: row["paid_at"])
    for number, row in enumerate(paid_rows, start=first_receipt):
        row["receipt_seq"] = number
    for row in rows:
        row.setdefault("receipt_seq", None)


def _plans(
    rng: random.Random, donors: list[dict[str, Any]], first_id: int, now: datetime, share: float
) -> tuple[list[tuple[dict[str, Any], list[dict[str, Any]]]], list[dict[str, Any]]]:
    plans = []
    payments: list[dict[str, Any]] = []
    next_id = first_id
    for donor in donors:
        if rng.random() >= share:
            continue
        started = _seasonal_moment(rng, donor["created_at"], now)
        yearly = rng.random() < 0.15
        step = 365 if yearly else 30
        currency = _currency(rng)
        amount = rng.choice(YEARLY_AMOUNTS if yearly else MONTHLY_AMOUNTS)
        canceled = None
        failures: list[dict[str, Any]] = []
        moment = started
        while moment <= now:
            payments.append(
                {
                    "donor_id": donor["id"],
                    "plan_id": next_id,
                    "kind": DonationKind.RECURRING,
                    "status": DonationStatus.PAID,
                    "frequency": Frequency.YEARLY if yearly else Frequency.MONTHLY,
                    "amount_minor": amount,
                    "currency": currency,
                    "refunded_minor": 0,
                    "disputed_minor": 0,
                    "source": "",
                    "language": donor["language"],
                    "paid_at": moment,
                    "created_at": moment,
                }
            )
            moment = moment + timedelta(days=step)
            if moment > now:
                break
            if rng.random() < 0.03:  # a renewal fails...
                failures.append(
                    {
                        "plan_id": next_id,
                        "stripe_invoice_id": f"in_history_{next_id}_{len(failures)}",
                        "failed_at": moment,
                    }
                )
                if rng.random() < 0.4:  # ...and the plan ends
                    canceled = moment + timedelta(days=14)
                    break
                moment += timedelta(days=3)  # ...and a retry goes through
            if rng.random() < (0.05 if yearly else 0.025):
                canceled = moment - timedelta(days=rng.randint(1, 20))
                break
        if canceled is not None and canceled > now:
            canceled = None
        plans.append(
            (
                {
                    "id": next_id,
                    "donor_id": donor["id"],
                    "stripe_subscription_id": f"sub_history_{next_id}",
                    "status": PlanStatus.CANCELED if canceled else PlanStatus.ACTIVE,
                    "interval": Frequency.YEARLY if yearly else Frequency.MONTHLY,
                    "amount_minor": amount,
                    "currency": currency,
                    "source": "",
                    "started_at": started,
                    "canceled_at": canceled,
                    "cancel_at_period_end": False,
                    "created_at": started,
                },
                failures,
            )
        )
        next_id += 1
    return plans, payments


def _insert(
    session: Session, model: type, rows: list[dict[str, Any]], tick: Callable[[int], None]
) -> None:
    for offset in range(0, len(rows), BATCH):
        chunk = rows[offset : offset + BATCH]
        session.execute(insert(model), chunk)
        session.commit()
        tick(len(chunk))
