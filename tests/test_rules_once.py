"""Rules written once: the one-row settings helper, the "counts as paid" and net amount rules
of the summary triggers, the "wants this digest" predicate and the "current donor" rule,
each checked on the database the suite runs on (SQLite, or PostgreSQL when asked)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import product
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.donations.factories import make_donation, make_donor, make_plan
from tests.subscribers.factories import make_subscriber
from webapp.db import get_database, get_or_create_row
from webapp.digests.building import get_digest_settings
from webapp.digests.lifecycle import eligible_subscribers
from webapp.digests.models import (
    DeliveryStatus,
    DigestDelivery,
    DigestIssue,
    DigestSettings,
    IssueStatus,
)
from webapp.digests.worker import _readers
from webapp.donations.models import (
    CURRENT_DONOR_WINDOW,
    Donation,
    DonationSettings,
    DonationStatus,
    Donor,
    PlanStatus,
    current_donor_condition,
    net_amount,
    paid_condition,
)
from webapp.donations.services import get_donation_settings
from webapp.reports.metrics import NET_AMOUNT
from webapp.reports.models import ExchangeRate, ReportSettings
from webapp.reports.rates import get_report_settings
from webapp.reports.summary import DonationMonthTotal, rebuild
from webapp.site.models import SiteSettings
from webapp.site.services import get_site_settings
from webapp.subscribers.models import Subscriber, SubscriberStatus

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)

SETTINGS: list[tuple[Callable[[Session], Any], type[Any]]] = [
    (get_digest_settings, DigestSettings),
    (get_donation_settings, DonationSettings),
    (get_report_settings, ReportSettings),
    (get_site_settings, SiteSettings),
]


# --- One settings helper -----------------------------------------------------------------------


@pytest.mark.parametrize(("get_settings", "model"), SETTINGS)
def test_settings_row_is_created_once_with_defaults(
    app: Flask, get_settings: Callable[[Session], Any], model: type[Any]
) -> None:
    with get_database(app).session() as session:
        first = get_settings(session)
        session.commit()
        assert first.id == 1
    with get_database(app).session() as session:
        assert get_settings(session).id == 1
        assert session.scalar(select(model).where(model.id != 1)) is None
        assert len(session.scalars(select(model)).all()) == 1


@pytest.mark.parametrize(("get_settings", "model"), SETTINGS)
def test_settings_created_in_a_transaction_rolled_back_keep_their_values(
    app: Flask, get_settings: Callable[[Session], Any], model: type[Any]
) -> None:
    # The donation page reads its settings, then rolls back when Stripe is down, and still
    # renders the form from them.
    with get_database(app).session() as session:
        settings = get_settings(session)
        session.rollback()
        assert settings.id == 1
        for column in model.__table__.columns:
            getattr(settings, column.key)  # loaded, not a row that never was


@pytest.mark.parametrize(("get_settings", "model"), SETTINGS)
def test_a_lost_insert_race_returns_the_winners_row_and_keeps_the_callers_work(
    app: Flask,
    monkeypatch: pytest.MonkeyPatch,
    get_settings: Callable[[Session], Any],
    model: type[Any],
) -> None:
    database = get_database(app)
    with database.session() as winner:
        winner.add(model(id=1))
        winner.commit()
    with database.session() as session:
        # The caller's own work, written before it asks for the settings.
        session.add(ExchangeRate(currency="USD", rate=Decimal("0.9"), set_at=NOW))
        session.flush()
        # This request looked before the winner's commit: its first look finds nothing, so
        # its insert loses on the primary key.
        real_get = session.get
        looks: list[int] = []

        def first_look_misses(entity: Any, ident: Any, **kw: Any) -> Any:
            looks.append(1)
            return None if len(looks) == 1 else real_get(entity, ident, **kw)

        monkeypatch.setattr(session, "get", first_look_misses)
        settings = get_settings(session)
        monkeypatch.undo()
        assert settings.id == 1
        assert len(looks) == 2
        session.commit()
    with database.session() as session:
        assert session.get(ExchangeRate, "USD") is not None
        assert len(session.scalars(select(model)).all()) == 1


def test_two_first_requests_at_once_on_postgresql(app: Flask) -> None:
    database = get_database(app)
    if not database.is_postgres:
        pytest.skip("two writers on one row at once need PostgreSQL")
    results: list[object] = []
    with database.session() as first:
        get_or_create_row(first, SiteSettings)  # inserted, not committed yet

        def second_request() -> None:
            try:
                with database.session() as second:
                    results.append(get_or_create_row(second, SiteSettings).id)
                    second.commit()
            except Exception as exc:  # noqa: BLE001 (reported to the test thread below)
                results.append(exc)

        thread = threading.Thread(target=second_request)
        thread.start()
        time.sleep(0.5)  # the second insert now waits on the first one's key
        assert results == []
        first.commit()
        thread.join(timeout=10)
    assert results == [1]
    with database.session() as session:
        assert len(session.scalars(select(SiteSettings)).all()) == 1


# --- "Counts as paid" and the net amount: Python, SQLAlchemy and the summary triggers --------


def _counted_by_triggers(session: Session) -> dict[str, tuple[int, int]]:
    """{source: (net, gifts)} of what the triggers keep, one source per donation here."""
    rows = session.scalars(
        select(DonationMonthTotal).execution_options(populate_existing=True)
    ).all()
    return {row.source: (row.net_minor, row.gifts) for row in rows if row.gifts}


def _check_paid_rule_everywhere(session: Session) -> None:
    donations = session.scalars(select(Donation).execution_options(populate_existing=True)).all()
    in_python = {d.source: (int(net_amount(d)), 1) for d in donations if d.counts_as_paid}
    in_sql = {
        source: (int(net), 1)
        for source, net in session.execute(
            select(Donation.source, net_amount(Donation)).where(Donation.counts_as_paid)
        )
    }
    by_condition = set(session.scalars(select(Donation.source).where(paid_condition(Donation))))
    assert in_sql == in_python
    assert by_condition == set(in_python)
    assert _counted_by_triggers(session) == in_python
    # `rebuild` recomputes them with the same rules.
    rebuild(session.connection())
    assert _counted_by_triggers(session) == in_python


def test_triggers_python_and_sql_agree_on_what_counts_as_paid(app: Flask) -> None:
    with get_database(app).session() as session:
        donor = make_donor(session)
        for status in DonationStatus:
            for with_time in (True, False):
                donation = make_donation(
                    session,
                    donor=donor,
                    status=status,
                    amount_minor=1000,
                    refunded_minor=300,
                    disputed_minor=200,
                    source=f"{status}-{with_time}",
                    receipt_seq=None,
                )
                donation.paid_at = NOW if with_time else None
        session.commit()
        counted = _counted_by_triggers(session)
        assert counted == {"paid-True": (500, 1)}
        _check_paid_rule_everywhere(session)
        # Every status changed to every other one, the time kept or taken away: the triggers
        # take the old row out and put the new one in by the same rule.
        statuses = list(DonationStatus)
        for step in range(1, len(statuses)):
            for donation in session.scalars(select(Donation)).all():
                donation.status = statuses[
                    (statuses.index(DonationStatus(donation.status)) + step) % len(statuses)
                ]
                donation.refunded_minor = 100 * step
            session.commit()
            _check_paid_rule_everywhere(session)
        for donation in session.scalars(select(Donation)).all():
            donation.paid_at = None if donation.paid_at else NOW
        session.commit()
        _check_paid_rule_everywhere(session)
        for donation in session.scalars(select(Donation)).all():
            session.delete(donation)
        session.commit()
        assert _counted_by_triggers(session) == {}


def test_net_amount_is_one_rule_for_a_gift_and_for_sql(app: Flask) -> None:
    with get_database(app).session() as session:
        gift = make_donation(
            session,
            donor=make_donor(session),
            amount_minor=1000,
            refunded_minor=250,
            disputed_minor=100,
        )
        session.commit()
        assert net_amount(gift) == 650 == gift.net_minor
        assert session.scalar(select(NET_AMOUNT).where(Donation.id == gift.id)) == 650
        # The publication never keeps less than nothing of one gift (the reports' sums
        # take the amounts as they are).
        gift.refunded_minor, gift.disputed_minor = 1000, 1000
        assert net_amount(gift) == -1000
        assert gift.net_minor == 0
        session.rollback()


# --- "Wants this digest": one SQL predicate for approval and for the check before sending ------


LANGUAGE_LISTS = ["", ",en,", ",ru,", ",en,ru,", ",ru,en,", ",de,"]


def _wants(status: SubscriberStatus, suppressed: bool, paused: bool, languages: str) -> bool:
    """The rule in the README's words: confirmed, not suppressed, not paused, and reading
    the issue's language."""
    return (
        status == SubscriberStatus.CONFIRMED
        and not suppressed
        and not paused
        and ",en," in languages
    )


def test_approval_and_the_send_time_check_agree_on_who_wants_an_issue(app: Flask) -> None:
    with get_database(app).session() as session:
        expected: dict[int, bool] = {}
        for status, suppressed, paused, languages in product(
            SubscriberStatus, (False, True), (False, True), LANGUAGE_LISTS
        ):
            subscriber = make_subscriber(
                session,
                status=str(status),
                suppressed=suppressed,
                paused=paused,
                digest_languages=languages,
            )
            expected[subscriber.id] = _wants(status, suppressed, paused, languages)
        issue = DigestIssue(language="en", status=IssueStatus.SENDING, created_at=NOW)
        session.add(issue)
        session.flush()
        selected = set(session.scalars(select(Subscriber.id).where(eligible_subscribers("en"))))
        assert selected == {key for key, wants in expected.items() if wants}
        deliveries = {}
        for subscriber_id in expected:
            delivery = DigestDelivery(
                issue_id=issue.id,
                subscriber_id=subscriber_id,
                status=DeliveryStatus.PENDING,
                attempts=0,
                next_attempt_at=NOW,
                claimed_by="run-1",
            )
            session.add(delivery)
            session.flush()
            deliveries[delivery.id] = subscriber_id
        readers = _readers(session, list(deliveries), "run-1")
        at_send_time = {}
        for delivery_id, (_issue_id, reader) in readers.items():
            assert reader is not None
            at_send_time[deliveries[delivery_id]] = reader.wants_issue
        assert at_send_time == expected
        session.rollback()


# --- "Current donor": one SQL rule ------------------------------------------------------------


def test_current_donors_are_those_with_a_running_plan_or_a_paid_gift_this_year(
    app: Flask,
) -> None:
    now = NOW
    gifts: dict[str, tuple[DonationStatus, datetime] | None] = {
        "none": None,
        "paid-recently": (DonationStatus.PAID, now - timedelta(days=364)),
        "paid-at-the-edge": (DonationStatus.PAID, now - CURRENT_DONOR_WINDOW),
        "paid-long-ago": (DonationStatus.PAID, now - timedelta(days=366)),
        "failed-recently": (DonationStatus.FAILED, now - timedelta(days=3)),
        "pending-recently": (DonationStatus.PENDING, now - timedelta(days=3)),
    }
    with get_database(app).session() as session:
        expected: dict[int, bool] = {}
        for plan_status in (None, *PlanStatus):
            for gift_name, gift in gifts.items():
                donor = make_donor(session)
                if plan_status is not None:
                    make_plan(session, donor=donor, status=plan_status)
                if gift is not None:
                    status, when = gift
                    donation = make_donation(session, donor=donor, status=status, paid_at=when)
                    donation.paid_at = when if status == DonationStatus.PAID else None
                    donation.created_at = when
                expected[donor.id] = plan_status in (
                    PlanStatus.ACTIVE,
                    PlanStatus.PAST_DUE,
                ) or gift_name in ("paid-recently", "paid-at-the-edge")
        session.flush()
        current = set(session.scalars(select(Donor.id).where(current_donor_condition(now))))
        assert current == {key for key, value in expected.items() if value}
        session.rollback()
