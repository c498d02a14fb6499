"""Every supporter figure, defined once. The dashboard, the reports and their CSV files call
these functions and nothing else, so they never disagree. The README's glossary states each
definition in words.

Money is kept per currency (minor units) and converted to the base currency only for
display, with the rates staff set (`rates.Rates`).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import Session, aliased

from webapp.donations.models import (
    Donation,
    DonationKind,
    Donor,
    Frequency,
    Plan,
    PlanFailure,
    PlanStatus,
    net_amount,
)
from webapp.reports.summary import (
    DonationMonthKind,
    DonationMonthTotal,
    DonorPlanCount,
    PlanFailureMonth,
    PlanMonthDelta,
    SubscriberMonthPair,
)
from webapp.subscribers.models import Subscriber, SubscriberStatus

#: A lapsed donor's plan ended or failed within this many days.
LAPSED_DAYS = 90


@dataclass(frozen=True)
class ReportFilter:
    """What a report is narrowed to; empty fields mean "all"."""

    currency: str = ""
    campaign_id: int | None = None
    source: str = ""
    language: str = ""

    def plans(self) -> list[ColumnElement[bool]]:
        """Conditions on `Plan`."""
        conditions: list[ColumnElement[bool]] = []
        if self.currency:
            conditions.append(Plan.currency == self.currency)
        if self.campaign_id is not None:
            conditions.append(Plan.campaign_id == self.campaign_id)
        if self.source:
            conditions.append(Plan.source == self.source)
        if self.language:
            # A plan's language is the language of the gift that started it.
            first_language = (
                select(Donation.language)
                .where(Donation.plan_id == Plan.id)
                .order_by(Donation.id)
                .limit(1)
                .scalar_subquery()
            )
            conditions.append(first_language == self.language)
        return conditions

    def totals(self) -> list[ColumnElement[bool]]:
        """Conditions on the monthly totals (`summary.DonationMonthTotal`)."""
        conditions = self.summary(DonationMonthTotal)
        if self.language:
            conditions.append(DonationMonthTotal.language == self.language)
        return conditions

    def summary(self, table: Any) -> list[ColumnElement[bool]]:
        """Conditions on a kept summary keyed by currency, campaign (0 for none) and
        source (`summary.PlanMonthDelta`, `summary.PlanCohortCount`, ...); language is not
        among their keys."""
        conditions: list[ColumnElement[bool]] = []
        if self.currency:
            conditions.append(table.currency == self.currency)
        if self.campaign_id is not None:
            conditions.append(table.campaign_id == self.campaign_id)
        if self.source:
            conditions.append(table.source == self.source)
        return conditions

    def donations(self) -> list[ColumnElement[bool]]:
        """Conditions on `Donation`."""
        conditions: list[ColumnElement[bool]] = []
        if self.currency:
            conditions.append(Donation.currency == self.currency)
        if self.campaign_id is not None:
            conditions.append(Donation.campaign_id == self.campaign_id)
        if self.source:
            conditions.append(Donation.source == self.source)
        if self.language:
            conditions.append(Donation.language == self.language)
        return conditions


NO_FILTER = ReportFilter()


# --- Time ------------------------------------------------------------------------------------


def month_start(moment: datetime | date) -> datetime:
    """Midnight UTC on the first day of `moment`'s month."""
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def add_months(start: datetime, months: int) -> datetime:
    """The first of the month `months` after (or before) `start`'s month."""
    index = start.year * 12 + start.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def month_starts(first: datetime, last: datetime) -> list[datetime]:
    """First days of every month from `first`'s month to `last`'s month, both included."""
    months, current, end = [], month_start(first), month_start(last)
    while current <= end:
        months.append(current)
        current = add_months(current, 1)
    return months


# --- Recurring plans -------------------------------------------------------------------------


def plan_active_at(moment: datetime) -> ColumnElement[bool]:
    """A plan is active at `moment` when it had started before it (its first payment went
    through) and was not cancelled before it. Past due counts as active: Stripe is still
    retrying. (At a month's first instant this is "active at the end of the last month".)"""
    return and_(
        Plan.started_at.is_not(None),
        Plan.started_at < moment,
        or_(Plan.canceled_at.is_(None), Plan.canceled_at >= moment),
    )


def _is_active(started: datetime, canceled: datetime | None, moment: datetime) -> bool:
    """`plan_active_at` for a plan already read."""
    return started < moment and (canceled is None or canceled >= moment)


# --- The fast path: monthly plan deltas kept by the database (`summary.PlanMonthDelta`) ------

_MEMO = "reports.one_reading"
_T = TypeVar("_T")


@contextmanager
def one_reading(session: Session) -> Iterator[None]:
    """Inside it, the kept plan deltas are read once, however many figures are built on
    them (the dashboard builds five). Only for reading: nothing inside may change plans."""
    session.info[_MEMO] = {}
    try:
        yield
    finally:
        session.info.pop(_MEMO, None)


def _remembered(session: Session, key: tuple[Any, ...], compute: Callable[[], _T]) -> _T:
    memo = session.info.get(_MEMO)
    if memo is None:
        return compute()
    if key not in memo:
        memo[key] = compute()
    return memo[key]


def _counting_month(
    session: Session, moment: datetime, changes: Sequence[Any] = (Plan.started_at, Plan.canceled_at)
) -> str | None:
    """The last month whose kept monthly counts make up the state at `moment`: the month
    before when `moment` is a month's first instant; `moment`'s own month when none of the
    `changes` timestamps (default: plans starting or ending) is at or after it (always true
    for "now"); None when only the rows themselves can tell."""
    if moment == month_start(moment):
        return f"{add_months(moment, -1):%Y-%m}"
    later = _remembered(
        session,
        ("later", moment, *(str(column) for column in changes)),
        lambda: session.scalar(
            select(changes[0]).where(or_(*(column >= moment for column in changes))).limit(1)
        ),
    )
    return None if later is not None else f"{moment:%Y-%m}"


def _deltas_by_month(
    session: Session, last_month: str, flt: ReportFilter
) -> list[tuple[str, str, int, int, int, int, int, int]]:
    return _remembered(
        session, ("deltas", last_month, flt), lambda: _read_deltas(session, last_month, flt)
    )


def _read_deltas(
    session: Session, last_month: str, flt: ReportFilter
) -> list[tuple[str, str, int, int, int, int, int, int]]:
    rows = session.execute(
        select(
            PlanMonthDelta.month,
            PlanMonthDelta.currency,
            func.sum(PlanMonthDelta.plans),
            func.sum(PlanMonthDelta.monthly_minor),
            func.sum(PlanMonthDelta.yearly_minor),
            func.sum(PlanMonthDelta.started),
            func.sum(PlanMonthDelta.cancelled),
            func.sum(PlanMonthDelta.churned),
        )
        .where(PlanMonthDelta.month <= last_month, *flt.summary(PlanMonthDelta))
        .group_by(PlanMonthDelta.month, PlanMonthDelta.currency)
        .order_by(PlanMonthDelta.month)
    ).all()
    return [
        (str(m), str(c), *(int(v or 0) for v in values))  # type: ignore[misc]
        for m, c, *values in rows
    ]


@dataclass(frozen=True)
class _PlanState:
    """Active plans and their amounts per currency at one moment (from the deltas)."""

    plans: int
    #: {currency: (monthly plans' amounts, yearly plans' amounts)}
    amounts: dict[str, tuple[int, int]]


def _plan_states(
    session: Session, moments: Sequence[datetime], flt: ReportFilter
) -> list[_PlanState] | None:
    """The state at each moment from the deltas, or None when the direct path is needed
    (a language filter, which plans do not carry, or a moment inside a month with later
    plan changes)."""
    if flt.language or not moments:
        return None
    months = [_counting_month(session, m) for m in moments]
    if any(month is None for month in months):
        return None
    rows = _deltas_by_month(session, max(m for m in months if m), flt)
    # One walk through the months (rows come in month order), taking the running sums at
    # each month asked for.
    at: dict[str, _PlanState] = {}
    plans, index = 0, 0
    amounts: dict[str, tuple[int, int]] = {}
    for last in sorted({str(m) for m in months}):
        while index < len(rows) and rows[index][0] <= last:
            _month, currency, count, monthly, yearly, *_rest = rows[index]
            plans += count
            before = amounts.get(currency, (0, 0))
            amounts[currency] = (before[0] + monthly, before[1] + yearly)
            index += 1
        at[last] = _PlanState(plans, dict(amounts))
    return [at[str(m)] for m in months]


def _multi_plan_correction(
    session: Session, moments: Sequence[datetime], flt: ReportFilter
) -> list[int]:
    """For each moment, active plans minus active donors: what donors with two or more
    active plans add beyond one each (few donors have more than one plan)."""
    # The kept per-donor counts name them; under a filter a donor may have one plan left,
    # which then adds nothing below.
    several = select(DonorPlanCount.donor_id).where(DonorPlanCount.plans > 1)
    rows = session.execute(
        select(Plan.donor_id, Plan.started_at, Plan.canceled_at).where(
            Plan.donor_id.in_(several), Plan.started_at.is_not(None), *flt.plans()
        )
    ).all()
    by_donor: dict[int, list[tuple[datetime, datetime | None]]] = {}
    for donor_id, started, canceled in rows:
        by_donor.setdefault(int(donor_id), []).append(
            (_aware(started), _aware(canceled) if canceled else None)
        )
    corrections = []
    for moment in moments:
        extra = 0
        for plans in by_donor.values():
            active = sum(1 for started, canceled in plans if _is_active(started, canceled, moment))
            extra += max(0, active - 1)
        corrections.append(extra)
    return corrections


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# Each figure is computed for a list of moments (or months) in one pass over the plans, so a
# twelve-month trend costs one query; the single-moment functions call the same code.

Window = tuple[datetime, datetime]


def active_recurring_donors_series(
    session: Session, moments: Sequence[datetime], flt: ReportFilter = NO_FILTER
) -> list[int]:
    """Donors with at least one plan active at each of `moments`."""
    if not moments:
        return []
    states = _plan_states(session, moments, flt)
    if states is not None:
        corrections = _multi_plan_correction(session, moments, flt)
        return [state.plans - extra for state, extra in zip(states, corrections, strict=True)]
    columns = [func.count(func.distinct(case((plan_active_at(m), Plan.donor_id)))) for m in moments]
    row = session.execute(
        select(*columns).where(
            Plan.started_at.is_not(None), Plan.started_at <= max(moments), *flt.plans()
        )
    ).one()
    return [int(value or 0) for value in row]


def active_recurring_donors(
    session: Session, moment: datetime, flt: ReportFilter = NO_FILTER
) -> int:
    """Donors with at least one plan active at `moment`."""
    return active_recurring_donors_series(session, [moment], flt)[0]


def mrr_series(
    session: Session, moments: Sequence[datetime], flt: ReportFilter = NO_FILTER
) -> list[dict[str, int]]:
    """Monthly recurring revenue at each of `moments`, per currency (minor units): the monthly
    amount of every plan active then, yearly plans counted as a twelfth of their amount."""
    if not moments:
        return []
    states = _plan_states(session, moments, flt)
    if states is not None:
        return [
            {
                currency: monthly + round(year_total / 12)
                for currency, (monthly, year_total) in sorted(state.amounts.items())
                if monthly + round(year_total / 12)
            }
            for state in states
        ]
    yearly = Plan.interval == Frequency.YEARLY
    columns = []
    for moment in moments:
        active = plan_active_at(moment)
        columns.append(func.sum(case((and_(active, ~yearly), Plan.amount_minor), else_=0)))
        columns.append(func.sum(case((and_(active, yearly), Plan.amount_minor), else_=0)))
    rows = session.execute(
        select(Plan.currency, *columns)
        .where(Plan.started_at.is_not(None), Plan.started_at <= max(moments), *flt.plans())
        .group_by(Plan.currency)
    ).all()
    result: list[dict[str, int]] = [{} for _ in moments]
    for currency, *sums in rows:
        for index in range(len(moments)):
            monthly, year_total = int(sums[2 * index] or 0), int(sums[2 * index + 1] or 0)
            amount = monthly + round(year_total / 12)
            if amount:
                result[index][currency] = amount
    return result


def mrr(session: Session, moment: datetime, flt: ReportFilter = NO_FILTER) -> dict[str, int]:
    """Monthly recurring revenue at `moment` (see `mrr_series`)."""
    return mrr_series(session, [moment], flt)[0]


def _month_deltas(
    session: Session, windows: Sequence[Window], flt: ReportFilter
) -> dict[str, tuple[int, int, int, int]] | None:
    """{month: (active plans at its start, started, cancelled, churned)} for whole-month
    windows from the deltas; None when the direct path is needed."""
    if flt.language or not windows:
        return None
    if any(s != month_start(s) or e != add_months(s, 1) for s, e in windows):
        return None
    last = f"{max(s for s, _e in windows):%Y-%m}"
    wanted = {f"{s:%Y-%m}" for s, _e in windows}
    result: dict[str, tuple[int, int, int, int]] = {}
    running = 0
    per_month: dict[str, list[int]] = {}
    for month, _currency, count, _m, _y, started, cancelled, churned in _deltas_by_month(
        session, last, flt
    ):
        totals = per_month.setdefault(month, [0, 0, 0, 0])
        totals[0] += count
        totals[1] += started
        totals[2] += cancelled
        totals[3] += churned
    for month in sorted(set(per_month) | wanted):
        count, started, cancelled, churned = per_month.get(month, [0, 0, 0, 0])
        if month in wanted:
            result[month] = (running, started, cancelled, churned)
        running += count
    return result


def plans_started_series(
    session: Session, windows: Sequence[Window], flt: ReportFilter = NO_FILTER
) -> list[int]:
    """Plans whose first payment went through in each [start, end)."""
    by_month = _month_deltas(session, windows, flt)
    if by_month is not None:
        return [by_month[f"{s:%Y-%m}"][1] for s, _e in windows]
    return _count_series(
        session, [and_(Plan.started_at >= s, Plan.started_at < e) for s, e in windows], flt
    )


def plans_cancelled_series(
    session: Session, windows: Sequence[Window], flt: ReportFilter = NO_FILTER
) -> list[int]:
    """Plans that had started and were cancelled in each [start, end) (by the donor, staff,
    or Stripe after failed retries)."""
    by_month = _month_deltas(session, windows, flt)
    if by_month is not None:
        return [by_month[f"{s:%Y-%m}"][2] for s, _e in windows]
    return _count_series(
        session,
        [
            and_(Plan.started_at.is_not(None), Plan.canceled_at >= s, Plan.canceled_at < e)
            for s, e in windows
        ],
        flt,
    )


def plans_failed_series(
    session: Session, windows: Sequence[Window], flt: ReportFilter = NO_FILTER
) -> list[int]:
    """Plans with at least one failed renewal in each [start, end), recovered or not."""
    if not windows:
        return []
    if all(s == month_start(s) and e == add_months(s, 1) for s, e in windows):
        return _failed_by_month(session, windows, flt)
    columns = [
        func.count(
            func.distinct(
                case(
                    (
                        and_(PlanFailure.failed_at >= s, PlanFailure.failed_at < e),
                        PlanFailure.plan_id,
                    )
                )
            )
        )
        for s, e in windows
    ]
    query = (
        select(*columns)
        .select_from(PlanFailure)
        .where(
            PlanFailure.failed_at >= min(s for s, _e in windows),
            PlanFailure.failed_at < max(e for _s, e in windows),
        )
    )
    conditions = flt.plans()
    if conditions:  # the plans are read only when the filter asks about them
        query = query.join(Plan, Plan.id == PlanFailure.plan_id).where(*conditions)
    row = session.execute(query).one()
    return [int(value or 0) for value in row]


def _failed_by_month(session: Session, windows: Sequence[Window], flt: ReportFilter) -> list[int]:
    """`plans_failed_series` for whole months, from the kept failure months (`summary`)."""
    first, last = (f"{month:%Y-%m}" for month in (min(windows)[0], max(windows)[0]))
    query = (
        select(PlanFailureMonth.month, func.count())
        .where(PlanFailureMonth.month >= first, PlanFailureMonth.month <= last)
        .group_by(PlanFailureMonth.month)
    )
    conditions = flt.plans()
    if conditions:
        query = query.join(Plan, Plan.id == PlanFailureMonth.plan_id).where(*conditions)
    counts = {str(key): int(count) for key, count in session.execute(query)}
    return [counts.get(f"{s:%Y-%m}", 0) for s, _e in windows]


def _count_series(
    session: Session, conditions: Sequence[ColumnElement[bool]], flt: ReportFilter
) -> list[int]:
    if not conditions:
        return []
    columns = [func.sum(case((condition, 1), else_=0)) for condition in conditions]
    row = session.execute(select(*columns).where(*flt.plans())).one()
    return [int(value or 0) for value in row]


def plans_started(
    session: Session, start: datetime, end: datetime, flt: ReportFilter = NO_FILTER
) -> int:
    """Plans whose first payment went through in [start, end)."""
    return plans_started_series(session, [(start, end)], flt)[0]


def plans_cancelled(
    session: Session, start: datetime, end: datetime, flt: ReportFilter = NO_FILTER
) -> int:
    """Plans that had started and were cancelled in [start, end)."""
    return plans_cancelled_series(session, [(start, end)], flt)[0]


def plans_failed(
    session: Session, start: datetime, end: datetime, flt: ReportFilter = NO_FILTER
) -> int:
    """Plans with at least one failed renewal in [start, end), whether or not it recovered."""
    return plans_failed_series(session, [(start, end)], flt)[0]


@dataclass(frozen=True)
class Churn:
    """Churn of one period: plans active at its start that were cancelled during it."""

    active_at_start: int
    churned: int

    @property
    def rate(self) -> float | None:
        """churned / active at start (None when nothing was active)."""
        return self.churned / self.active_at_start if self.active_at_start else None


def churn_series(
    session: Session, windows: Sequence[Window], flt: ReportFilter = NO_FILTER
) -> list[Churn]:
    """Churn over each [start, end) (one pass over the plans)."""
    if not windows:
        return []
    by_month = _month_deltas(session, windows, flt)
    if by_month is not None:
        return [Churn(by_month[f"{s:%Y-%m}"][0], by_month[f"{s:%Y-%m}"][3]) for s, _e in windows]
    columns = []
    for start, end in windows:
        active = plan_active_at(start)
        columns.append(func.sum(case((active, 1), else_=0)))
        columns.append(func.sum(case((and_(active, Plan.canceled_at < end), 1), else_=0)))
    row = session.execute(
        select(*columns).where(
            Plan.started_at.is_not(None),
            Plan.started_at <= max(start for start, _end in windows),
            *flt.plans(),
        )
    ).one()
    values = [int(value or 0) for value in row]
    return [Churn(values[2 * i], values[2 * i + 1]) for i in range(len(windows))]


def churn(session: Session, start: datetime, end: datetime, flt: ReportFilter = NO_FILTER) -> Churn:
    """Churn over [start, end)."""
    return churn_series(session, [(start, end)], flt)[0]


def month_windows(months: Sequence[datetime]) -> list[Window]:
    """[first day, first day of the next month) of each month."""
    return [(month, add_months(month, 1)) for month in months]


# --- Revenue ---------------------------------------------------------------------------------

#: What a paid gift is worth: its amount less refunds and disputes (`net_amount`, in SQL).
NET_AMOUNT = net_amount(Donation)


@dataclass
class Revenue:
    """Net revenue of a period per kind and currency (minor units)."""

    #: {kind: {currency: minor}} for kind in one_time, recurring, offline.
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)

    def kind(self, kind: str) -> dict[str, int]:
        """Per-currency totals of one kind."""
        return dict(self.by_kind.get(kind, {}))

    def total(self) -> dict[str, int]:
        """Per-currency totals of every kind."""
        totals: dict[str, int] = {}
        for per_currency in self.by_kind.values():
            for currency, amount in per_currency.items():
                totals[currency] = totals.get(currency, 0) + amount
        return totals


def revenue(
    session: Session, start: datetime, end: datetime, flt: ReportFilter = NO_FILTER
) -> Revenue:
    """Net revenue of the gifts paid in the months from `start` up to `end` (both the first
    of a month): each gift counts in the month it was paid, less whatever was refunded or
    disputed since."""
    months = month_starts(start, add_months(end, -1)) if end > start else []
    total = Revenue()
    for month in monthly_revenue(session, months, flt):
        for kind, per_currency in month.by_kind.items():
            into = total.by_kind.setdefault(kind, {})
            for currency, amount in per_currency.items():
                into[currency] = into.get(currency, 0) + amount
    return total


def monthly_revenue(
    session: Session, months: Sequence[datetime], flt: ReportFilter = NO_FILTER
) -> list[Revenue]:
    """Net revenue per kind and currency of each month starting at `months`, read from the
    monthly totals the database keeps (`summary`), so a year costs a few thousand rows,
    not a scan of every gift."""
    if not months:
        return []
    keys = [f"{m:%Y-%m}" for m in months]
    conditions = flt.totals()
    # Unfiltered, the per-kind totals hold the same sums in a few rows a month.
    table: Any = DonationMonthTotal if conditions else DonationMonthKind
    rows = session.execute(
        select(table.month, table.kind, table.currency, func.sum(table.net_minor))
        .where(table.month >= keys[0], table.month <= keys[-1], table.gifts > 0, *conditions)
        .group_by(table.month, table.kind, table.currency)
    )
    index = {key: i for i, key in enumerate(keys)}
    result = [Revenue() for _ in months]
    for key, kind, currency, amount in rows:
        position = index.get(str(key))
        if position is None:
            continue
        per_kind = result[position].by_kind.setdefault(str(DonationKind(kind)), {})
        per_kind[currency] = per_kind.get(currency, 0) + int(amount or 0)
    return result


def month_key_of(session: Session) -> Any:
    """The "YYYY-MM" of `Donation.paid_at` in UTC, on SQLite and PostgreSQL."""
    return _utc_text(session, Donation.paid_at, "%Y-%m", "YYYY-MM")


def day_of(session: Session, moment: Any) -> Any:
    """The "YYYY-MM-DD" in UTC of a timestamp expression, as text from the database (a long
    list reads no datetimes back)."""
    return _utc_text(session, moment, "%Y-%m-%d", "YYYY-MM-DD")


def _utc_text(session: Session, moment: Any, sqlite_format: str, postgresql_format: str) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", moment), postgresql_format)
    return func.strftime(sqlite_format, moment)


# --- Subscribers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SubscriberFigures:
    """The list at a glance."""

    confirmed: int
    new_in_period: int
    unsubscribed_in_period: int


def subscriber_figures(session: Session, start: datetime, end: datetime) -> SubscriberFigures:
    """Confirmed subscribers now, and those confirmed / unsubscribed in [start, end)."""
    return subscriber_figures_series(session, [(start, end)])[0]


def subscriber_figures_series(
    session: Session, windows: Sequence[Window]
) -> list[SubscriberFigures]:
    """`subscriber_figures` for each window: whole months from the kept pairs (`summary`),
    other windows from the indexes of confirmation and unsubscribe times."""
    if not windows:
        return []
    if all(s == month_start(s) and e == add_months(s, 1) for s, e in windows):
        return _subscriber_months(session, windows)
    confirmed = _confirmed_now(session)
    new = _counts_in_windows(session, Subscriber.confirmed_at, windows)
    left = _counts_in_windows(session, Subscriber.unsubscribed_at, windows)
    return [SubscriberFigures(confirmed, n, u) for n, u in zip(new, left, strict=True)]


def _counts_in_windows(session: Session, column: Any, windows: Sequence[Window]) -> list[int]:
    """How many rows have `column` in each window: one query that reads only the (indexed)
    column, never the rows."""
    columns = [func.sum(case((and_(column >= s, column < e), 1), else_=0)) for s, e in windows]
    row = session.execute(
        select(*columns).where(
            column >= min(s for s, _e in windows), column < max(e for _s, e in windows)
        )
    ).one()
    return [int(value or 0) for value in row]


def _confirmed_now(session: Session) -> int:
    """Subscribers whose status is confirmed, from the kept pairs (`summary`)."""
    confirmed = str(SubscriberStatus.CONFIRMED)
    return sum(n for _joined, _left, status, n in _subscriber_pairs(session) if status == confirmed)


def _subscriber_months(session: Session, windows: Sequence[Window]) -> list[SubscriberFigures]:
    """`subscriber_figures_series` for whole months, from the kept pairs."""
    pairs = _subscriber_pairs(session)
    confirmed = _confirmed_now(session)
    result = []
    for start, _end in windows:
        month = f"{start:%Y-%m}"
        result.append(
            SubscriberFigures(
                confirmed,
                sum(n for joined, _left, _status, n in pairs if joined == month),
                sum(n for _joined, left, _status, n in pairs if left == month),
            )
        )
    return result


def confirmed_subscribers_series(session: Session, moments: Sequence[datetime]) -> list[int]:
    """Subscribers confirmed before each moment who had not unsubscribed by then (from their
    timestamps)."""
    if not moments:
        return []
    changes = (Subscriber.confirmed_at, Subscriber.unsubscribed_at)
    months = [_counting_month(session, moment, changes) for moment in moments]
    if all(months):
        # A pair counts at every month from its confirmation up to the one before it left:
        # add it to that run of the (sorted) months at once.
        targets = sorted({str(m) for m in months})
        runs = [0] * (len(targets) + 1)
        for joined, left, _status, n in _subscriber_pairs(session):
            if not joined:
                continue
            first = bisect_left(targets, joined)
            end = bisect_left(targets, left) if left else len(targets)
            if first < end:
                runs[first] += n
                runs[end] -= n
        totals = dict(zip(targets, accumulate(runs), strict=False))
        return [totals[str(m)] for m in months]
    columns = [
        func.sum(
            case(
                (
                    and_(
                        Subscriber.confirmed_at < moment,
                        or_(
                            Subscriber.unsubscribed_at.is_(None),
                            Subscriber.unsubscribed_at > moment,
                        ),
                    ),
                    1,
                ),
                else_=0,
            )
        )
        for moment in moments
    ]
    row = session.execute(select(*columns).where(Subscriber.confirmed_at < max(moments))).one()
    return [int(value or 0) for value in row]


def _subscriber_pairs(session: Session) -> list[tuple[str, str, str, int]]:
    """The kept (month confirmed, month unsubscribed, status, subscribers) counts
    (`summary`), read once per `one_reading`."""

    def read() -> list[tuple[str, str, str, int]]:
        pair = SubscriberMonthPair
        rows = session.execute(
            select(pair.confirmed_month, pair.left_month, pair.status, pair.subscribers).where(
                pair.subscribers != 0
            )
        )
        return [(str(joined), str(left), str(status), int(n)) for joined, left, status, n in rows]

    return _remembered(session, ("subscriber pairs",), read)


def lapsed_conditions(now: datetime) -> list[ColumnElement[bool]]:
    """Conditions on a `Plan` (joined to its donor) that make its donor lapsed at `now`: the
    plan was cancelled in the last `LAPSED_DAYS` days, or is past due after a renewal failed
    in that time, and the donor has no plan in good standing (active, not past due)."""
    since = now - timedelta(days=LAPSED_DAYS)
    other = aliased(Plan)
    healthy = (
        select(other.id)
        .where(
            other.donor_id == Donor.id,
            other.status == PlanStatus.ACTIVE,
            other.started_at.is_not(None),
        )
        .exists()
    )
    return [
        or_(
            and_(Plan.canceled_at >= since, Plan.canceled_at <= now, Plan.started_at.is_not(None)),
            and_(Plan.status == PlanStatus.PAST_DUE, Plan.last_failed_at >= since),
        ),
        ~healthy,
    ]


def timedelta_days(days: int) -> timedelta:
    """`days` days."""
    return timedelta(days=days)


def week_before(moment: datetime) -> datetime:
    """Seven days before `moment`."""
    return moment - timedelta(days=7)
