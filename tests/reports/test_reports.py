"""Every report on the hand-computed dataset (see `dataset.py`), their pages and CSV files."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.helpers.html import csrf_token
from tests.reports import dataset
from tests.staff.factories import force_login, make_staff
from tests.subscribers.factories import make_subscriber
from webapp.core.clock import FrozenClock
from webapp.reports import metrics
from webapp.reports.rates import load_rates
from webapp.reports.tables import REPORTS, Query, find_report
from webapp.staff.models import AuditLog


@pytest.fixture
def loaded(db_session: Session) -> Session:
    dataset.load(db_session)
    make_subscriber(db_session, email="a@example.org", created_at=dataset.at(9, 1))
    db_session.commit()
    return db_session


def run(
    session: Session, slug: str, first: tuple[int, int], last: tuple[int, int]
) -> list[dict[str, Any]]:
    """Rows of a report over the months `first`..`last` ((year, month) pairs) at NOW."""
    report = find_report(slug)
    assert report is not None
    query = Query(
        datetime(*first, 1, tzinfo=UTC),
        datetime(*last, 1, tzinfo=UTC),
        metrics.ReportFilter(),
        dataset.NOW,
    )
    return report.build(session, query, load_rates(session)).rows


def test_revenue_by_month(loaded: Session) -> None:
    assert run(loaded, "revenue", (2026, 10), (2026, 11)) == [
        {"month": "2026-10", "recurring": 0, "one_time": 2500, "offline": 0, "total": 2500},
        {"month": "2026-11", "recurring": 1000, "one_time": 7000, "offline": 4800, "total": 12800},
    ]


def test_recurring_donors_and_mrr(loaded: Session) -> None:
    assert run(loaded, "recurring", (2026, 10), (2026, 11)) == [
        {"month": "2026-10", "active_donors": 3, "mrr": 4000},
        {"month": "2026-11", "active_donors": 3, "mrr": 2700},
    ]


def test_new_and_churned_plans(loaded: Session) -> None:
    rows = run(loaded, "plans", (2026, 10), (2026, 11))
    assert [(r["started"], r["cancelled"], r["failed"]) for r in rows] == [(1, 1, 0), (1, 1, 1)]
    assert [r["churn"] for r in rows] == [pytest.approx(1 / 3), pytest.approx(1 / 3)]


def test_retention_by_cohort(loaded: Session) -> None:
    rows = {r["cohort"]: r for r in run(loaded, "cohorts", (2026, 7), (2026, 11))}
    assert [rows["2026-07"][f"m{i}"] for i in range(5)] == [1.0, 1.0, 1.0, 0.0, None]
    assert [rows["2026-08"][f"m{i}"] for i in range(4)] == [1.0, 1.0, 1.0, None]
    assert [rows["2026-09"][f"m{i}"] for i in range(3)] == [1.0, 1.0, None]
    assert rows["2026-10"]["m0"] == 1.0 and rows["2026-11"]["m0"] is None
    assert rows["2026-11"]["plans"] == 1


def test_revenue_by_campaign_and_source(loaded: Session) -> None:
    assert run(loaded, "campaigns", (2026, 10), (2026, 11)) == [
        {"campaign": "—", "revenue": 15300, "gifts": 5}
    ]
    assert run(loaded, "sources", (2026, 10), (2026, 11))[0]["revenue"] == 15300


def test_average_and_median_gift(loaded: Session) -> None:
    november = run(loaded, "gifts", (2026, 11), (2026, 11))[0]
    assert (november["gifts"], november["average"], november["median"]) == (4, 3200, 2900)


def test_lapsed_donors_and_donors_who_subscribe(loaded: Session) -> None:
    lapsed = run(loaded, "lapsed", (2026, 11), (2026, 11))
    assert [(r["email"], r["reason"], r["lapsed_on"]) for r in lapsed] == [
        ("b@example.org", "cancelled", "2026-11-10"),
        ("e@example.org", "cancelled", "2026-10-20"),
    ]
    assert [r["email"] for r in run(loaded, "donor-subscribers", (2026, 11), (2026, 11))] == [
        "a@example.org"
    ]


def login(client: FlaskClient, session: Session, role: str) -> None:
    staff = make_staff(session, role=role)
    session.commit()
    force_login(client, session, staff)


def test_every_report_page_renders_with_chart_or_table(
    app: Flask, client: FlaskClient, loaded: Session, clock: FrozenClock
) -> None:
    clock.current = dataset.NOW
    login(client, loaded, "fundraiser")  # the personal reports too
    for report in REPORTS:
        page = client.get(f"/staff/reports/{report.slug}?from=2026-07&to=2026-11")
        assert page.status_code == 200, report.slug
        assert 'id="report-table"' in page.get_data(as_text=True)
    bad = client.get("/staff/reports/revenue?from=2026-13&to=nonsense")
    assert bad.status_code == 400 and "YYYY-MM" in bad.get_data(as_text=True)
    assert client.get("/staff/reports/no-such-report").status_code == 404


def test_csv_matches_the_table_and_is_audited(
    app: Flask, client: FlaskClient, loaded: Session, clock: FrozenClock
) -> None:
    clock.current = dataset.NOW
    login(client, loaded, "viewer")
    page = client.get("/staff/reports/revenue?from=2026-10&to=2026-11").get_data(as_text=True)
    response = client.post(
        "/staff/reports/revenue.csv?from=2026-10&to=2026-11", data={"csrf_token": csrf_token(page)}
    )
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows == [
        ["month", "recurring_eur", "one_time_eur", "offline_eur", "total_eur"],
        ["2026-10", "0.00", "25.00", "0.00", "25.00"],
        ["2026-11", "10.00", "70.00", "48.00", "128.00"],
    ]
    actions = list(loaded.scalars(select(AuditLog.action).where(AuditLog.action == "reports.csv")))
    assert actions == ["reports.csv"]
    # A viewer may not take personal data away, nor see it: page and CSV are refused alike,
    # and the menu does not offer them.
    assert client.get("/staff/reports/lapsed").status_code == 403
    refused = client.post("/staff/reports/lapsed.csv", data={"csrf_token": csrf_token(page)})
    assert refused.status_code == 403
    assert "/staff/reports/lapsed" not in page and "/staff/reports/revenue" in page


def test_fundraisers_download_the_win_back_list(
    app: Flask, client: FlaskClient, loaded: Session, clock: FrozenClock
) -> None:
    clock.current = dataset.NOW
    login(client, loaded, "fundraiser")
    page = client.get("/staff/reports/lapsed").get_data(as_text=True)
    response = client.post("/staff/reports/lapsed.csv", data={"csrf_token": csrf_token(page)})
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "b@example.org" in text and "e@example.org" in text


def test_subscriber_growth(loaded: Session) -> None:
    rows = {r["month"]: r for r in run(loaded, "subscribers", (2026, 9), (2026, 11))}
    assert (rows["2026-09"]["confirmed"], rows["2026-09"]["unsubscribed"]) == (3, 0)
    assert (
        rows["2026-11"]["confirmed"],
        rows["2026-11"]["unsubscribed"],
        rows["2026-11"]["net"],
    ) == (1, 1, 0)


def test_unsubscribes_per_issue(loaded: Session) -> None:
    from webapp.digests.models import DeliveryStatus, DigestDelivery, DigestIssue, IssueStatus
    from webapp.email_events.models import EmailEvent
    from webapp.subscribers.models import Subscriber

    readers = list(loaded.scalars(select(Subscriber).order_by(Subscriber.id)))
    issue = DigestIssue(
        language="en",
        status=IssueStatus.SENT,
        subject="Week 45",
        items=[],
        created_at=dataset.at(11, 5),
        approved_at=dataset.at(11, 5),
        recipients=len(readers),
    )
    loaded.add(issue)
    loaded.flush()
    for reader in readers:
        loaded.add(
            DigestDelivery(
                issue_id=issue.id,
                subscriber_id=reader.id,
                status=DeliveryStatus.SENT,
                attempts=1,
                next_attempt_at=dataset.at(11, 5),
                sent_at=dataset.at(11, 5),
            )
        )
    loaded.commit()
    # The dataset's leaver unsubscribed on 13 November: more than 7 days after this issue.
    row = run(loaded, "issues", (2026, 11), (2026, 11))[0]
    assert (row["recipients"], row["sent"], row["failed"], row["unsubscribed"]) == (5, 5, 0, 0)
    leaver = readers[0]
    leaver.status = "unsubscribed"  # type: ignore[assignment]
    leaver.unsubscribed_at = dataset.at(11, 7)
    loaded.commit()
    row = run(loaded, "issues", (2026, 11), (2026, 11))[0]
    assert row["unsubscribed"] == 1 and row["unsubscribe_rate"] == pytest.approx(1 / 5)
    assert (row["hard_bounces"], row["complaints"], row["clicks"]) == (0, 0, 0)
    # What relays reported about two of its deliveries (one complaint reported twice).
    deliveries = loaded.scalars(
        select(DigestDelivery)
        .where(DigestDelivery.issue_id == issue.id)
        .order_by(DigestDelivery.id)
    ).all()
    for key, kind, delivery in [
        ("b1", "hard_bounce", deliveries[1]),
        ("c1", "complaint", deliveries[2]),
        ("c2", "complaint", deliveries[2]),
    ]:
        loaded.add(
            EmailEvent(
                provider="generic",
                event_key=key,
                kind=kind,
                subscriber_id=delivery.subscriber_id,
                delivery_id=delivery.id,
                issue_id=issue.id,
                message_id="",
                occurred_at=dataset.at(11, 6),
                received_at=dataset.at(11, 6),
                detail="",
            )
        )
    loaded.commit()
    row = run(loaded, "issues", (2026, 11), (2026, 11))[0]
    assert (row["hard_bounces"], row["soft_bounces"], row["complaints"]) == (1, 0, 1)
    assert row["bounce_rate"] == pytest.approx(1 / 5)
    assert row["complaint_rate"] == pytest.approx(1 / 5)


def test_gift_sizes_agree_whether_read_from_totals_or_from_gifts(loaded: Session) -> None:
    report = find_report("gifts")
    assert report is not None
    november = datetime(2026, 11, 1, tzinfo=UTC)
    rates = load_rates(loaded)
    kept = report.build(
        loaded, Query(november, november, metrics.ReportFilter(), dataset.NOW), rates
    )
    scanned = report.build(
        loaded, Query(november, november, metrics.ReportFilter(language="en"), dataset.NOW), rates
    )
    assert kept.rows == scanned.rows
