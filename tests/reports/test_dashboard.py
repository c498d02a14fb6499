"""The dashboard's figures on the hand-computed dataset (SQLite and PostgreSQL), and its page."""

from __future__ import annotations

from decimal import Decimal

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.helpers.html import csrf_token
from tests.reports import dataset
from tests.staff.factories import force_login, make_staff
from webapp.core.clock import FrozenClock
from webapp.reports import metrics
from webapp.reports.dashboard import build_dashboard
from webapp.reports.rates import load_rates


@pytest.fixture
def loaded(db_session: Session) -> Session:
    dataset.load(db_session)
    return db_session


def test_every_dashboard_figure_matches_the_hand_computed_one(loaded: Session) -> None:
    board = build_dashboard(loaded, dataset.NOW, load_rates(loaded))
    values = {f.key: (f.value, f.previous) for f in board.figures}
    # Now, and at the end of October (E left on 20 October, B is still there).
    assert values["active_donors"] == (3, 3)
    assert values["mrr"] == (2700, 4000)
    assert board.figure("mrr").per_currency == {"EUR": 1500, "GBP": 1000}
    assert values["one_time_revenue"] == (11800, 2500)
    assert values["plans_started"] == (1, 1)
    assert values["plans_cancelled"] == (1, 1)
    assert values["plans_failed"] == (1, 0)
    assert values["churn"] == (pytest.approx(1 / 3), pytest.approx(1 / 3))
    assert values["subscribers"][0] == 3
    # End of August, September, October, and now (one joined this week; the one who left
    # was never confirmed).
    assert board.figure("subscribers").trend[-4:] == [0, 2, 2, 3]
    assert values["new_subscribers"] == (1, 0)
    assert values["unsubscribed"] == (1, 0)
    # The trend's last point is the figure itself: one function computes both.
    for figure in board.figures:
        if figure.trend and figure.key != "subscribers":
            assert figure.trend[-1] == pytest.approx(figure.value)


def test_kept_deltas_and_the_plans_themselves_agree(loaded: Session) -> None:
    # Month starts and "now" are read from the kept deltas; a moment inside a past month can
    # only be answered from the plans: putting one in the list sends all through the plans.
    moments = [metrics.add_months(metrics.month_start(dataset.NOW), -i) for i in range(5)]
    moments.append(dataset.NOW)
    inside = dataset.at(10, 15)
    fast_donors = metrics.active_recurring_donors_series(loaded, moments)
    direct_donors = metrics.active_recurring_donors_series(loaded, [*moments, inside])[:-1]
    assert fast_donors == direct_donors
    assert (
        metrics.mrr_series(loaded, moments) == metrics.mrr_series(loaded, [*moments, inside])[:-1]
    )
    months = [metrics.add_months(metrics.month_start(dataset.NOW), -i) for i in range(5)]
    windows = metrics.month_windows(months)
    shifted = [(s + metrics.timedelta_days(0), e) for s, e in windows]
    odd = [*shifted, (dataset.at(10, 15), dataset.at(11, 15))]  # not whole months: direct
    assert (
        metrics.plans_started_series(loaded, windows)
        == metrics.plans_started_series(loaded, odd)[:-1]
    )
    assert (
        metrics.plans_cancelled_series(loaded, windows)
        == metrics.plans_cancelled_series(loaded, odd)[:-1]
    )
    assert metrics.churn_series(loaded, windows) == metrics.churn_series(loaded, odd)[:-1]
    assert (
        metrics.plans_failed_series(loaded, windows)
        == metrics.plans_failed_series(loaded, odd)[:-1]
    )


def test_metrics_with_filters(loaded: Session) -> None:
    usd = metrics.ReportFilter(currency="USD")
    october = metrics.month_start(dataset.at(10, 1))
    assert metrics.active_recurring_donors(loaded, dataset.at(10, 15), usd) == 1
    assert metrics.mrr(loaded, dataset.at(10, 15), usd) == {"USD": 2000}
    november = metrics.revenue(
        loaded, metrics.add_months(october, 1), metrics.add_months(october, 2)
    )
    assert november.kind("one_time") == {"EUR": 7000, "USD": 0}
    assert november.kind("offline") == {"GBP": 4000}
    assert november.kind("recurring") == {"EUR": 1000}


def test_a_missing_rate_is_named_not_guessed(loaded: Session) -> None:
    from webapp.reports.models import ExchangeRate

    loaded.delete(loaded.get(ExchangeRate, "GBP"))
    loaded.commit()
    board = build_dashboard(loaded, dataset.NOW, load_rates(loaded))
    assert board.figure("mrr").value == 1500
    assert board.figure("mrr").missing_rates == ("GBP",)


def test_the_staff_start_page_is_the_dashboard_for_report_roles(
    app: Flask, client: FlaskClient, loaded: Session, clock: FrozenClock
) -> None:
    clock.current = dataset.NOW
    for role, sees in (("viewer", True), ("fundraiser", True), ("admin", True), ("editor", False)):
        staff = make_staff(loaded, role=role)
        loaded.commit()
        force_login(client, loaded, staff)
        page = client.get("/staff/").get_data(as_text=True)
        assert ("Active recurring donors" in page) is sees, role
        if sees:
            assert "figure-mrr" in page and "data-chart=" in page
            assert "<script>" not in page  # charts draw from data attributes
        client.cookie_jar.clear() if hasattr(client, "cookie_jar") else None
    assert client.get("/static/vendor/chart-4.6.1.umd.min.js").status_code == 200


def test_rates_are_set_by_fundraisers_and_checked(
    app: Flask, client: FlaskClient, loaded: Session
) -> None:
    staff = make_staff(loaded, role="fundraiser")
    loaded.commit()
    force_login(client, loaded, staff)
    token = csrf_token(client.get("/staff/reports/rates").get_data(as_text=True))
    bad = client.post("/staff/reports/rates", data={"csrf_token": token, "rate_USD": "-1"})
    assert bad.status_code == 400 and "positive number" in bad.get_data(as_text=True)
    good = client.post("/staff/reports/rates", data={"csrf_token": token, "rate_USD": "0,95"})
    assert good.status_code == 302
    assert load_rates(loaded).per_unit["USD"] == Decimal("0.95")
    assert 'value="0.95"' in client.get("/staff/reports/rates").get_data(as_text=True)


def test_viewers_read_rates_but_cannot_change_them(
    app: Flask, client: FlaskClient, loaded: Session
) -> None:
    staff = make_staff(loaded, role="viewer")
    loaded.commit()
    force_login(client, loaded, staff)
    page = client.get("/staff/reports/rates")
    assert page.status_code == 200 and "<input id=" not in page.get_data(as_text=True)
    token = csrf_token(page.get_data(as_text=True))
    refused = client.post("/staff/reports/rates", data={"csrf_token": token, "rate_USD": "1"})
    assert refused.status_code == 403


def test_kept_subscriber_pairs_and_the_subscribers_themselves_agree(loaded: Session) -> None:
    from tests.subscribers.factories import make_subscriber

    # A reader who confirmed in August, left in September and confirmed again in October.
    make_subscriber(
        loaded,
        created_at=dataset.at(8, 5),
        status="unsubscribed",
        unsubscribed_at=dataset.at(9, 9),
    ).confirmed_at = dataset.at(10, 2)
    loaded.commit()
    month_ends = [metrics.add_months(metrics.month_start(dataset.NOW), -i) for i in range(5)]
    month_ends.append(dataset.NOW)
    odd = [*month_ends, dataset.at(9, 15)]  # inside a month: the subscribers answer it all
    assert (
        metrics.confirmed_subscribers_series(loaded, month_ends)
        == metrics.confirmed_subscribers_series(loaded, odd)[:-1]
    )
    months = metrics.month_windows(
        [metrics.add_months(metrics.month_start(dataset.NOW), -i) for i in range(4)]
    )
    whole = metrics.subscriber_figures_series(loaded, months)
    one_odd = metrics.subscriber_figures_series(loaded, [*months, (dataset.at(9, 1), dataset.NOW)])
    assert whole == one_odd[:-1]
    assert [(f.new_in_period, f.unsubscribed_in_period) for f in whole] == [
        (1, 1),  # November: one confirmed, one left (never confirmed)
        (1, 0),  # October: the returning reader
        (2, 1),  # September: two confirmed, the returning reader left
        (0, 0),  # August: its confirmation was replaced by October's
    ]


def test_the_last_digest_compares_with_the_issue_before(
    loaded: Session, client: FlaskClient, clock: FrozenClock
) -> None:
    from webapp.digests.models import DeliveryStatus, DigestDelivery, DigestIssue, IssueStatus

    def issue(day: int, statuses: list[DeliveryStatus], status: IssueStatus) -> None:
        row = DigestIssue(
            language="en",
            status=status,
            subject=f"Week of {day} November",
            items=[],
            created_at=dataset.at(11, day),
            approved_at=dataset.at(11, day),
            recipients=len(statuses),
        )
        loaded.add(row)
        loaded.flush()
        loaded.add_all(
            DigestDelivery(
                issue_id=row.id,
                subscriber_id=1000 + n,
                status=delivery,
                attempts=1,
                next_attempt_at=dataset.at(11, day),
            )
            for n, delivery in enumerate(statuses)
        )

    sent, failed, pending = DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.PENDING
    issue(3, [sent, sent, failed], IssueStatus.SENT)
    issue(10, [sent, sent, sent, failed, pending], IssueStatus.SENDING)
    issue(12, [pending], IssueStatus.DRAFT)  # not approved: not on the dashboard
    loaded.commit()
    # A relay's complaint about one message of the latest issue (read as the issues report).
    from webapp.email_events.models import EmailEvent

    latest = loaded.scalars(
        select(DigestDelivery).join(DigestIssue).where(DigestIssue.status == IssueStatus.SENDING)
    ).first()
    assert latest is not None
    loaded.add(
        EmailEvent(
            provider="generic",
            event_key="c1",
            kind="complaint",
            subscriber_id=latest.subscriber_id,
            delivery_id=latest.id,
            issue_id=latest.issue_id,
            message_id="",
            occurred_at=dataset.at(11, 11),
            received_at=dataset.at(11, 11),
            detail="",
        )
    )
    loaded.commit()
    board = build_dashboard(loaded, dataset.NOW, load_rates(loaded))
    assert board.last_issue is not None and board.previous_issue is not None
    assert (board.last_issue.recipients, board.last_issue.sent, board.last_issue.failed) == (
        5,
        3,
        1,
    )
    assert (board.last_issue.complaints, board.last_issue.hard_bounces) == (1, 0)
    assert (board.previous_issue.sent, board.previous_issue.subject) == (2, "Week of 3 November")
    assert board.issue_trend is not None
    assert board.issue_trend.trend == [3.0, 5.0]
    assert board.issue_trend.trend_labels == ["2026-11-03 en", "2026-11-10 en"]
    clock.current = dataset.NOW
    staff = make_staff(loaded, role="viewer")
    loaded.commit()
    force_login(client, loaded, staff)
    page = client.get("/staff/").get_data(as_text=True)
    assert "previous issue: 2 / 3" in page
    assert "relay reports: spam complaints 1, hard bounces 0" in page
    assert "Recipients per issue" in page
