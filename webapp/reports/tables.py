"""The reports behind the dashboard: each a table (what the page and its CSV show, row for
row) and a chart of some of its columns. Every number comes from `metrics`.

A report is a function `(session, query, rates) -> Table`; `REPORTS` lists them in menu
order. Cells hold plain values (ints, floats, strings); `kind` on each column says how to
show them (money in the base currency's minor units, a count, a share 0–1, text).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from webapp.core.clock import as_utc
from webapp.donations.models import Campaign, Donation, DonationStatus, Donor, Plan
from webapp.reports import metrics
from webapp.reports.rates import Rates
from webapp.reports.summary import DonationMonthAmount, DonationMonthTotal, PlanCohortCount
from webapp.subscribers.models import Subscriber, SubscriberStatus


@dataclass(frozen=True)
class Column:
    """One column: its key (CSV header), label and kind ("money", "count", "share", "text")."""

    key: str
    label: Any
    kind: str = "count"


@dataclass(frozen=True)
class Chart:
    """Which columns to draw, and how ("bar", "stacked", "line")."""

    type: str
    columns: tuple[str, ...]


@dataclass
class Table:
    """A report's result."""

    columns: list[Column]
    rows: list[dict[str, Any]]
    chart: Chart | None = None
    #: Currencies left out of base totals for want of a rate.
    missing_rates: set[str] = field(default_factory=set)
    #: True when rows name people (CSV only for roles allowed personal data).
    personal: bool = False


@dataclass(frozen=True)
class Query:
    """The filters of a report page: months [first, last] and the `ReportFilter`."""

    first: datetime
    last: datetime
    flt: metrics.ReportFilter
    now: datetime

    @property
    def months(self) -> list[datetime]:
        """First days of the months in range."""
        return metrics.month_starts(self.first, self.last)


@dataclass(frozen=True)
class Report:
    """A report in the menu."""

    slug: str
    title: Any
    description: Any
    build: Callable[[Session, Query, Rates], Table]
    #: True when its rows name people: page and CSV only for `Permission.REPORTS_PERSONAL`
    #: (known before the report runs, so a refused role never runs the query).
    personal: bool = False


def _base(rates: Rates, totals: dict[str, int], missing: set[str]) -> int:
    converted = rates.convert(totals)
    missing.update(converted.missing)
    return converted.base_minor


# --- Revenue by month ------------------------------------------------------------------------


def revenue_by_month(session: Session, query: Query, rates: Rates) -> Table:
    """Net revenue per month: recurring, one-time and offline."""
    missing: set[str] = set()
    rows = []
    for month, revenue in zip(
        query.months, metrics.monthly_revenue(session, query.months, query.flt), strict=True
    ):
        recurring = _base(rates, revenue.kind("recurring"), missing)
        one_time = _base(rates, revenue.kind("one_time"), missing)
        offline = _base(rates, revenue.kind("offline"), missing)
        rows.append(
            {
                "month": f"{month:%Y-%m}",
                "recurring": recurring,
                "one_time": one_time,
                "offline": offline,
                "total": recurring + one_time + offline,
            }
        )
    return Table(
        [
            Column("month", _l("Month"), "text"),
            Column("recurring", _l("Recurring"), "money"),
            Column("one_time", _l("One-time"), "money"),
            Column("offline", _l("Offline"), "money"),
            Column("total", _l("Total"), "money"),
        ],
        rows,
        Chart("stacked", ("recurring", "one_time", "offline")),
        missing,
    )


# --- Recurring donors and MRR over time -------------------------------------------------------


def recurring_over_time(session: Session, query: Query, rates: Rates) -> Table:
    """Active recurring donors and MRR at the end of each month."""
    missing: set[str] = set()
    ends = [min(metrics.add_months(month, 1), query.now) for month in query.months]
    with metrics.one_reading(session):
        donors = metrics.active_recurring_donors_series(session, ends, query.flt)
        mrr = metrics.mrr_series(session, ends, query.flt)
    rows = [
        {
            "month": f"{month:%Y-%m}",
            "active_donors": donors[index],
            "mrr": _base(rates, mrr[index], missing),
        }
        for index, month in enumerate(query.months)
    ]
    return Table(
        [
            Column("month", _l("Month"), "text"),
            Column("active_donors", _l("Active recurring donors")),
            Column("mrr", _l("Monthly recurring revenue"), "money"),
        ],
        rows,
        Chart("line", ("active_donors",)),
        missing,
    )


# --- New vs churned plans ---------------------------------------------------------------------


def plans_by_month(session: Session, query: Query, rates: Rates) -> Table:
    """New, cancelled and failed plans per month, and churn."""
    windows = metrics.month_windows(query.months)
    with metrics.one_reading(session):
        started = metrics.plans_started_series(session, windows, query.flt)
        cancelled = metrics.plans_cancelled_series(session, windows, query.flt)
        failed = metrics.plans_failed_series(session, windows, query.flt)
        churn = metrics.churn_series(session, windows, query.flt)
    rows = [
        {
            "month": f"{month:%Y-%m}",
            "started": started[index],
            "cancelled": cancelled[index],
            "failed": failed[index],
            "churn": churn[index].rate,
        }
        for index, month in enumerate(query.months)
    ]
    return Table(
        [
            Column("month", _l("Month"), "text"),
            Column("started", _l("New plans")),
            Column("cancelled", _l("Cancelled plans")),
            Column("failed", _l("Plans with a failed renewal")),
            Column("churn", _l("Churn"), "share"),
        ],
        rows,
        Chart("bar", ("started", "cancelled")),
    )


# --- Retention by cohort ----------------------------------------------------------------------

COHORT_MONTHS = 12


def cohorts(session: Session, query: Query, rates: Rates) -> Table:
    """Plans grouped by the month they started; the share still active 0, 1, 2 … months on
    (at the end of each month; empty where that month has not ended yet)."""
    first, last = f"{query.months[0]:%Y-%m}", f"{query.months[-1]:%Y-%m}"
    # {start month: [(end month or "", plans)]}
    by_cohort: dict[str, list[tuple[str, int]]] = {}
    if not query.flt.language:
        # The kept counts per (start month, end month).
        rows = session.execute(
            select(
                PlanCohortCount.start_month,
                PlanCohortCount.end_month,
                func.sum(PlanCohortCount.plans),
            )
            .where(
                PlanCohortCount.start_month >= first,
                PlanCohortCount.start_month <= last,
                *query.flt.summary(PlanCohortCount),
            )
            .group_by(PlanCohortCount.start_month, PlanCohortCount.end_month)
        )
        for start, ended, count in rows:
            if int(count or 0):
                by_cohort.setdefault(str(start), []).append((str(ended), int(count)))
    else:
        plans = session.execute(
            select(Plan.started_at, Plan.canceled_at).where(
                Plan.started_at.is_not(None),
                Plan.started_at >= query.months[0],
                Plan.started_at < metrics.add_months(query.months[-1], 1),
                *query.flt.plans(),
            )
        ).all()
        for started, canceled in plans:
            ended = f"{as_utc(canceled):%Y-%m}" if canceled else ""
            by_cohort.setdefault(f"{as_utc(started):%Y-%m}", []).append((ended, 1))
    rows_out = []
    for month in query.months:
        key = f"{month:%Y-%m}"
        members = by_cohort.get(key, [])
        size = sum(count for _ended, count in members)
        row: dict[str, Any] = {"cohort": key, "plans": size}
        for offset in range(COHORT_MONTHS):
            end = metrics.add_months(month, offset + 1)
            if end > query.now or not size:
                row[f"m{offset}"] = None
                continue
            # Active at the end of month `offset`: not cancelled before the next one began.
            boundary = f"{metrics.add_months(month, offset):%Y-%m}"
            alive = sum(count for ended, count in members if ended == "" or ended > boundary)
            row[f"m{offset}"] = alive / size
        rows_out.append(row)
    columns = [Column("cohort", _l("Start month"), "text"), Column("plans", _l("Plans"))]
    columns += [
        Column(f"m{offset}", _l("Month %(n)d", n=offset), "share")
        for offset in range(COHORT_MONTHS)
    ]
    return Table(columns, rows_out, None)


# --- Revenue by campaign and by source -------------------------------------------------------


def _paid_in_range(query: Query) -> list[Any]:
    return [
        Donation.status == DonationStatus.PAID,
        Donation.paid_at >= query.months[0],
        Donation.paid_at < metrics.add_months(query.months[-1], 1),
        *query.flt.donations(),
    ]


def _grouped_revenue(
    session: Session, query: Query, rates: Rates, group: Any
) -> tuple[list[tuple[Any, int, int]], set[str]]:
    """(group value, base-currency net, paid gifts) per group, largest first, from the
    monthly totals."""
    rows = session.execute(
        select(
            group,
            DonationMonthTotal.currency,
            func.sum(DonationMonthTotal.net_minor),
            func.sum(DonationMonthTotal.gifts),
        )
        .where(
            DonationMonthTotal.month >= f"{query.months[0]:%Y-%m}",
            DonationMonthTotal.month <= f"{query.months[-1]:%Y-%m}",
            DonationMonthTotal.gifts > 0,
            *query.flt.totals(),
        )
        .group_by(group, DonationMonthTotal.currency)
    ).all()
    totals: dict[Any, dict[str, int]] = {}
    gifts: dict[Any, int] = {}
    for key, currency, amount, count in rows:
        totals.setdefault(key, {})[currency] = int(amount or 0)
        gifts[key] = gifts.get(key, 0) + int(count or 0)
    missing: set[str] = set()
    result = [(key, _base(rates, per, missing), gifts[key]) for key, per in totals.items()]
    result.sort(key=lambda item: (-item[1], str(item[0])))
    return result, missing


def revenue_by_campaign(session: Session, query: Query, rates: Rates) -> Table:
    """Net revenue per campaign ("no campaign" for the general donation page)."""
    grouped, missing = _grouped_revenue(session, query, rates, DonationMonthTotal.campaign_id)
    names = {c.id: c.slug for c in session.scalars(select(Campaign))}
    rows = [
        {"campaign": names.get(key, "") if key else "—", "revenue": amount, "gifts": gifts}
        for key, amount, gifts in grouped
    ]
    return Table(
        [
            Column("campaign", _l("Campaign"), "text"),
            Column("revenue", _l("Net revenue"), "money"),
            Column("gifts", _l("Paid gifts")),
        ],
        rows,
        Chart("bar", ("revenue",)),
        missing,
    )


def revenue_by_source(session: Session, query: Query, rates: Rates) -> Table:
    """Net revenue per source (the article or link a gift came from), top 50."""
    grouped, missing = _grouped_revenue(session, query, rates, DonationMonthTotal.source)
    rows = [
        {"source": key or "—", "revenue": amount, "gifts": gifts}
        for key, amount, gifts in grouped[:50]
    ]
    return Table(
        [
            Column("source", _l("Source"), "text"),
            Column("revenue", _l("Net revenue"), "money"),
            Column("gifts", _l("Paid gifts")),
        ],
        rows,
        Chart("bar", ("revenue",)),
        missing,
    )


# --- Average and median gift ------------------------------------------------------------------


def gift_sizes(session: Session, query: Query, rates: Rates) -> Table:
    """Average and median paid gift per month (net, in the base currency)."""
    missing: set[str] = set()
    # {month: {base-currency net amount: gifts}}
    per_month: dict[str, dict[int, int]] = {}
    flt = query.flt
    if flt.campaign_id is None and not flt.source and not flt.language:
        # The kept distribution of amounts per month and currency.
        rows = session.execute(
            select(
                DonationMonthAmount.month,
                DonationMonthAmount.currency,
                DonationMonthAmount.net_minor,
                DonationMonthAmount.gifts,
            ).where(
                DonationMonthAmount.month >= f"{query.months[0]:%Y-%m}",
                DonationMonthAmount.month <= f"{query.months[-1]:%Y-%m}",
                DonationMonthAmount.gifts > 0,
                *([DonationMonthAmount.currency == flt.currency] if flt.currency else []),
            )
        )
    else:
        # Narrowed by campaign, source or language: read the gifts themselves.
        month_key = metrics.month_key_of(session)
        rows = session.execute(
            select(month_key, Donation.currency, metrics.NET_AMOUNT, func.count())
            .where(*_paid_in_range(query))
            .group_by(month_key, Donation.currency, metrics.NET_AMOUNT)
        )
    for month_text, currency, amount, count in rows:
        value = _base(rates, {currency: int(amount)}, missing)
        bucket = per_month.setdefault(str(month_text), {})
        bucket[value] = bucket.get(value, 0) + int(count)
    table_rows = []
    for month in query.months:
        distribution = per_month.get(f"{month:%Y-%m}", {})
        count = sum(distribution.values())
        table_rows.append(
            {
                "month": f"{month:%Y-%m}",
                "gifts": count,
                "average": round(sum(v * n for v, n in distribution.items()) / count)
                if count
                else None,
                "median": _median(distribution) if count else None,
            }
        )
    return Table(
        [
            Column("month", _l("Month"), "text"),
            Column("gifts", _l("Paid gifts")),
            Column("average", _l("Average gift"), "money"),
            Column("median", _l("Median gift"), "money"),
        ],
        table_rows,
        Chart("line", ("average", "median")),
        missing,
    )


def _median(distribution: dict[int, int]) -> int:
    """The median of values given as {value: how many}."""
    count = sum(distribution.values())
    ordered = sorted(distribution.items())
    wanted = [(count - 1) // 2, count // 2]
    found: list[int] = []
    seen = 0
    for value, n in ordered:
        while wanted and wanted[0] < seen + n:
            found.append(value)
            wanted.pop(0)
        seen += n
    return round(sum(found) / len(found))


# --- People: lapsed donors, donors who subscribe -----------------------------------------------


def lapsed_donors(session: Session, query: Query, rates: Rates) -> Table:
    """Donors whose plan was cancelled or failed in the last 90 days and who have no active
    plan now: the people to win back."""
    since = query.now - metrics.timedelta_days(metrics.LAPSED_DAYS)
    canceled, failed = func.max(Plan.canceled_at), func.max(Plan.last_failed_at)
    # The later of the two events says when and why; a failure counts only inside the window
    # (a cancellation that qualifies always is). Dates come back as text: a list of
    # thousands reads no datetimes.
    failed_last = and_(failed >= since, or_(canceled.is_(None), failed > canceled))
    donors = session.execute(
        select(
            Donor.name,
            Donor.email,
            Donor.language,
            metrics.day_of(session, canceled),
            metrics.day_of(session, failed),
            case((failed_last, 1), else_=0),
        )
        .join(Plan, Plan.donor_id == Donor.id)
        .where(*metrics.lapsed_conditions(query.now), *query.flt.plans())
        .group_by(Donor.id, Donor.name, Donor.email, Donor.language)
        .order_by(Donor.email)
    ).all()
    rows = [
        {
            "name": name,
            "email": email,
            "language": language,
            "lapsed_on": (failed_day if by_failure else canceled_day) or "",
            "reason": "failed" if by_failure else "cancelled",
        }
        for name, email, language, canceled_day, failed_day, by_failure in donors
    ]
    return Table(
        [
            Column("name", _l("Name"), "text"),
            Column("email", _l("Email"), "text"),
            Column("language", _l("Language"), "text"),
            Column("lapsed_on", _l("Lapsed on"), "text"),
            Column("reason", _l("Why"), "text"),
        ],
        rows,
        None,
        personal=True,
    )


def donor_subscribers(session: Session, query: Query, rates: Rates) -> Table:
    """Donors with a paid gift who are also confirmed subscribers."""
    rows = session.execute(
        select(Donor.name, Donor.email, Subscriber.language, Subscriber.confirmed_at)
        .join(Subscriber, Subscriber.email == Donor.email)
        .where(
            Subscriber.status == SubscriberStatus.CONFIRMED,
            select(Donation.id)
            .where(Donation.donor_id == Donor.id, Donation.status == DonationStatus.PAID)
            .exists(),
        )
        .order_by(Donor.email)
    ).all()
    return Table(
        [
            Column("name", _l("Name"), "text"),
            Column("email", _l("Email"), "text"),
            Column("language", _l("Digest language"), "text"),
            Column("subscribed", _l("Subscribed since"), "text"),
        ],
        [
            {
                "name": name,
                "email": email,
                "language": language,
                "subscribed": f"{as_utc(confirmed):%Y-%m-%d}" if confirmed else "",
            }
            for name, email, language, confirmed in rows
        ],
        None,
        personal=True,
    )


# --- Subscribers --------------------------------------------------------------------------------


def subscriber_growth(session: Session, query: Query, rates: Rates) -> Table:
    """Confirmations and unsubscribes per month (by their timestamps), and the net change."""
    rows = []
    series = metrics.subscriber_figures_series(session, metrics.month_windows(query.months))
    for month, figures in zip(query.months, series, strict=True):
        rows.append(
            {
                "month": f"{month:%Y-%m}",
                "confirmed": figures.new_in_period,
                "unsubscribed": figures.unsubscribed_in_period,
                "net": figures.new_in_period - figures.unsubscribed_in_period,
            }
        )
    return Table(
        [
            Column("month", _l("Month"), "text"),
            Column("confirmed", _l("Confirmed")),
            Column("unsubscribed", _l("Unsubscribed")),
            Column("net", _l("Net change")),
        ],
        rows,
        Chart("bar", ("confirmed", "unsubscribed")),
    )


#: An unsubscribe counts against an issue when it comes this soon after the issue went out.
UNSUBSCRIBE_WINDOW_DAYS = 7


def issues_report(session: Session, query: Query, rates: Rates) -> Table:
    """Each issue that went out in range: recipients, sent, failed, what relays reported
    (hard and soft bounces, spam complaints, as counts and shares of sent), clicks, and
    readers who got it and unsubscribed within 7 days."""
    from webapp.digests.models import DeliveryStatus, DigestDelivery, DigestIssue, IssueStatus
    from webapp.digests.services import clicks_per_link
    from webapp.email_events.services import issue_reports

    issues = session.scalars(
        select(DigestIssue)
        .where(
            DigestIssue.status.in_([IssueStatus.SENT, IssueStatus.SENDING, IssueStatus.PAUSED]),
            DigestIssue.approved_at >= query.months[0],
            DigestIssue.approved_at < metrics.add_months(query.months[-1], 1),
            *([DigestIssue.language == query.flt.language] if query.flt.language else []),
        )
        .order_by(DigestIssue.approved_at)
    ).all()
    rows = []
    for issue in issues:
        counts = {
            status: int(count)
            for status, count in session.execute(
                select(DigestDelivery.status, func.count())
                .where(DigestDelivery.issue_id == issue.id)
                .group_by(DigestDelivery.status)
            )
        }
        sent_at = as_utc(issue.approved_at)  # type: ignore[arg-type]
        left = session.scalar(
            select(func.count(Subscriber.id))
            .join(DigestDelivery, DigestDelivery.subscriber_id == Subscriber.id)
            .where(
                DigestDelivery.issue_id == issue.id,
                DigestDelivery.status == DeliveryStatus.SENT,
                Subscriber.unsubscribed_at >= sent_at,
                Subscriber.unsubscribed_at
                < sent_at + metrics.timedelta_days(UNSUBSCRIBE_WINDOW_DAYS),
            )
        )
        sent = counts.get(DeliveryStatus.SENT, 0)
        reports = issue_reports(session, issue.id)
        rows.append(
            {
                "issue": f"{sent_at:%Y-%m-%d} {issue.language} #{issue.id}",
                "subject": issue.subject,
                "recipients": issue.recipients,
                "sent": sent,
                "failed": counts.get(DeliveryStatus.FAILED, 0),
                "hard_bounces": reports.hard_bounces,
                "soft_bounces": reports.soft_bounces,
                "bounce_rate": reports.rate(reports.hard_bounces) if sent else None,
                "complaints": reports.complaints,
                "complaint_rate": reports.rate(reports.complaints) if sent else None,
                "clicks": sum(link.clicks for link in clicks_per_link(session, issue)),
                "unsubscribed": int(left or 0),
                "unsubscribe_rate": int(left or 0) / sent if sent else None,
            }
        )
    return Table(
        [
            Column("issue", _l("Issue"), "text"),
            Column("subject", _l("Subject"), "text"),
            Column("recipients", _l("Recipients")),
            Column("sent", _l("Sent")),
            Column("failed", _l("Failed")),
            Column("hard_bounces", _l("Hard bounces")),
            Column("soft_bounces", _l("Soft bounces")),
            Column("bounce_rate", _l("Bounce rate"), "share"),
            Column("complaints", _l("Spam complaints")),
            Column("complaint_rate", _l("Complaint rate"), "share"),
            Column("clicks", _l("Clicks")),
            Column("unsubscribed", _l("Unsubscribed within 7 days")),
            Column("unsubscribe_rate", _l("Unsubscribe rate"), "share"),
        ],
        rows,
        Chart("bar", ("hard_bounces", "complaints", "unsubscribed")),
    )


REPORTS: list[Report] = [
    Report(
        "revenue",
        _l("Revenue by month"),
        _l("Recurring, one-time and offline, net of refunds and disputes."),
        revenue_by_month,
    ),
    Report(
        "recurring",
        _l("Recurring donors and MRR"),
        _l("Active recurring donors and monthly recurring revenue at the end of each month."),
        recurring_over_time,
    ),
    Report(
        "plans",
        _l("New and churned plans"),
        _l("Plans started, cancelled and with a failed renewal, per month; churn."),
        plans_by_month,
    ),
    Report(
        "cohorts",
        _l("Retention by cohort"),
        _l("Plans by start month: the share still active each month after."),
        cohorts,
    ),
    Report(
        "campaigns",
        _l("Revenue by campaign"),
        _l("Net revenue and paid gifts per campaign."),
        revenue_by_campaign,
    ),
    Report(
        "sources",
        _l("Revenue by source"),
        _l("Net revenue per article or link that brought the gift."),
        revenue_by_source,
    ),
    Report(
        "gifts",
        _l("Average and median gift"),
        _l("Paid gifts per month, net, in the base currency."),
        gift_sizes,
    ),
    Report(
        "lapsed",
        _l("Lapsed donors"),
        _l(
            "Plans cancelled or failed in the last 90 days, no active plan now: people to win back."
        ),
        lapsed_donors,
        personal=True,
    ),
    Report(
        "donor-subscribers",
        _l("Donors who subscribe"),
        _l("Donors with a paid gift who also get the digest."),
        donor_subscribers,
        personal=True,
    ),
    Report(
        "subscribers",
        _l("Subscriber growth"),
        _l("Confirmations and unsubscribes per month."),
        subscriber_growth,
    ),
    Report(
        "issues",
        _l("Unsubscribes per issue"),
        _l(
            "Each digest issue: sent, failed, bounces and spam complaints the relays"
            " reported, clicks, and readers who left within 7 days."
        ),
        issues_report,
    ),
]


def find_report(slug: str) -> Report | None:
    """The report with this slug."""
    return next((report for report in REPORTS if report.slug == slug), None)
