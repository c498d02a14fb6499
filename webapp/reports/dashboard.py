"""The supporter dashboard: each figure now, its change against the previous period, and a
twelve-month trend — all from `metrics`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.digests.models import DeliveryStatus, DigestDelivery, DigestIssue, IssueStatus
from webapp.email_events.services import issue_reports
from webapp.reports import metrics
from webapp.reports.rates import Rates

#: Months in each trend line (the current one included).
TREND_MONTHS = 12


@dataclass(frozen=True)
class Figure:
    """One dashboard tile."""

    #: Stable id (used by the template and tests), e.g. "active_donors".
    key: str
    #: Value now (a count, base-currency minor units, or a share 0–1).
    value: float | None
    #: The same figure for the previous period.
    previous: float | None
    #: "count", "money" or "percent".
    kind: str
    #: Month labels ("2026-11") and values of the trend, oldest first.
    trend_labels: list[str] = field(default_factory=list)
    trend: list[float | None] = field(default_factory=list)
    #: Per-currency values behind a money figure (minor units), and currencies left out of
    #: the base total for want of a rate.
    per_currency: dict[str, int] = field(default_factory=dict)
    missing_rates: tuple[str, ...] = ()

    @property
    def change(self) -> float | None:
        """value - previous."""
        if self.value is None or self.previous is None:
            return None
        return self.value - self.previous


@dataclass(frozen=True)
class LastIssue:
    """The numbers of the latest digest issue that went out."""

    id: int
    language: str
    subject: str
    recipients: int
    sent: int
    failed: int
    #: What relays reported (`email_events.services.issue_reports`, as the issues report).
    hard_bounces: int = 0
    complaints: int = 0


@dataclass(frozen=True)
class Dashboard:
    """Everything the dashboard shows."""

    now: datetime
    base_currency: str
    figures: list[Figure]
    last_issue: LastIssue | None
    #: The issue before it, to compare with.
    previous_issue: LastIssue | None = None
    #: Recipients of the latest issues (oldest first), the digest tile's trend.
    issue_trend: Figure | None = None

    def figure(self, key: str) -> Figure:
        """The figure with this key."""
        return next(f for f in self.figures if f.key == key)


def build_dashboard(session: Session, now: datetime, rates: Rates) -> Dashboard:
    """Every figure of the dashboard at `now`."""
    with metrics.one_reading(session):
        return _build(session, now, rates)


def _build(session: Session, now: datetime, rates: Rates) -> Dashboard:
    this_month = metrics.month_start(now)
    months = [metrics.add_months(this_month, -i) for i in range(TREND_MONTHS - 1, -1, -1)]
    labels = [f"{m:%Y-%m}" for m in months]
    # Point-in-time figures are taken at the end of each month (now for this one).
    month_ends = [min(metrics.add_months(m, 1), now) for m in months]

    # Point-in-time figures compare with the end of last month (the trend's last but one).
    donors_trend = metrics.active_recurring_donors_series(session, month_ends)
    mrr_values = metrics.mrr_series(session, month_ends)
    mrr_trend = [rates.convert(totals) for totals in mrr_values]
    mrr_now = mrr_values[-1]
    mrr_base = mrr_trend[-1]
    revenue_by_month = metrics.monthly_revenue(session, months)
    one_time = [rates.convert(_one_time(r)) for r in revenue_by_month]
    windows = metrics.month_windows(months)
    started = metrics.plans_started_series(session, windows)
    cancelled = metrics.plans_cancelled_series(session, windows)
    failed = metrics.plans_failed_series(session, windows)
    churn = [c.rate for c in metrics.churn_series(session, windows)]
    week_start = metrics.week_before(now)
    this_week, last_week = metrics.subscriber_figures_series(
        session, [(week_start, now), (metrics.week_before(week_start), week_start)]
    )
    confirmed_trend = metrics.confirmed_subscribers_series(session, month_ends)

    figures = [
        Figure(
            "active_donors",
            donors_trend[-1],
            donors_trend[-2],
            "count",
            labels,
            list(map(float, donors_trend)),
        ),
        Figure(
            "mrr",
            mrr_base.base_minor,
            mrr_trend[-2].base_minor,
            "money",
            labels,
            [float(c.base_minor) for c in mrr_trend],
            per_currency=mrr_now,
            missing_rates=mrr_base.missing,
        ),
        Figure(
            "one_time_revenue",
            one_time[-1].base_minor,
            one_time[-2].base_minor,
            "money",
            labels,
            [float(c.base_minor) for c in one_time],
            per_currency=_one_time(revenue_by_month[-1]),
            missing_rates=one_time[-1].missing,
        ),
        Figure(
            "plans_started", started[-1], started[-2], "count", labels, list(map(float, started))
        ),
        Figure(
            "plans_cancelled",
            cancelled[-1],
            cancelled[-2],
            "count",
            labels,
            list(map(float, cancelled)),
        ),
        Figure("plans_failed", failed[-1], failed[-2], "count", labels, list(map(float, failed))),
        Figure("churn", churn[-1], churn[-2], "percent", labels, list(churn)),
        Figure(
            "subscribers",
            this_week.confirmed,
            confirmed_trend[-2],  # at the end of last month, like the other counts of people
            "count",
            labels,
            list(map(float, confirmed_trend)),
        ),
        Figure("new_subscribers", this_week.new_in_period, last_week.new_in_period, "count"),
        Figure(
            "unsubscribed",
            this_week.unsubscribed_in_period,
            last_week.unsubscribed_in_period,
            "count",
        ),
    ]
    issues = _approved_issues(session, TREND_MONTHS)
    numbers: list[LastIssue | None] = [*_issue_numbers(session, issues[:2]), None, None]
    return Dashboard(now, rates.base, figures, numbers[0], numbers[1], _issue_trend(issues))


def _one_time(revenue: metrics.Revenue) -> dict[str, int]:
    """One-time revenue: single gifts online and offline."""
    totals = revenue.kind("one_time")
    for currency, amount in revenue.kind("offline").items():
        totals[currency] = totals.get(currency, 0) + amount
    return totals


def _approved_issues(session: Session, count: int) -> list[DigestIssue]:
    """The latest issues that were approved (sending, paused or sent), newest first."""
    return list(
        session.scalars(
            select(DigestIssue)
            .where(
                DigestIssue.status.in_([IssueStatus.SENT, IssueStatus.SENDING, IssueStatus.PAUSED])
            )
            .order_by(DigestIssue.approved_at.desc(), DigestIssue.id.desc())
            .limit(count)
        )
    )


def _issue_numbers(session: Session, issues: list[DigestIssue]) -> list[LastIssue]:
    """The numbers of these issues (one count of their deliveries, read from the index the
    senders' progress uses)."""
    counts: dict[tuple[int, Any], int] = {
        (int(issue_id), status): int(n)
        for issue_id, status, n in session.execute(
            select(DigestDelivery.issue_id, DigestDelivery.status, func.count())
            .where(DigestDelivery.issue_id.in_([issue.id for issue in issues]))
            .group_by(DigestDelivery.issue_id, DigestDelivery.status)
        )
    }
    reports = {issue.id: issue_reports(session, issue.id) for issue in issues}
    return [
        LastIssue(
            issue.id,
            issue.language,
            issue.subject,
            issue.recipients,
            counts.get((issue.id, DeliveryStatus.SENT), 0),
            counts.get((issue.id, DeliveryStatus.FAILED), 0),
            reports[issue.id].hard_bounces,
            reports[issue.id].complaints,
        )
        for issue in issues
    ]


def _issue_trend(newest_first: list[DigestIssue]) -> Figure | None:
    """Recipients of the latest approved issues (kept on each issue at approval)."""
    issues = list(reversed(newest_first))
    if not issues:
        return None
    recipients = [float(issue.recipients) for issue in issues]
    return Figure(
        "digest_recipients",
        recipients[-1],
        recipients[-2] if len(recipients) > 1 else None,
        "count",
        [
            f"{issue.approved_at:%Y-%m-%d} {issue.language}" if issue.approved_at else str(issue.id)
            for issue in issues
        ],
        list(recipients),
    )
