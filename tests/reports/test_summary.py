"""The monthly totals the database keeps (triggers) always equal the donations themselves."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from tests.donations.factories import make_donation, make_donor
from tests.reports import dataset
from webapp.donations.models import Donation, DonationStatus
from webapp.reports.summary import (
    DonationMonthAmount,
    DonationMonthKind,
    DonationMonthTotal,
    rebuild,
)


def fresh(entity: Any) -> Any:
    """A SELECT of `entity` whose rows overwrite what the session holds: the sessions keep
    objects across commits, and triggers and bulk updates change rows behind their back."""
    return select(entity).execution_options(populate_existing=True)


def kept(session: Session) -> dict[tuple[object, ...], tuple[int, int]]:
    """The kept totals; checks on the way that the per-kind totals are their sums."""
    rows = session.scalars(fresh(DonationMonthTotal)).all()
    sums: dict[tuple[str, str, str], tuple[int, int]] = {}
    for r in rows:
        net, gifts = sums.get((r.month, r.kind, r.currency), (0, 0))
        sums[(r.month, r.kind, r.currency)] = (net + r.net_minor, gifts + r.gifts)
    kinds = {
        (r.month, r.kind, r.currency): (r.net_minor, r.gifts)
        for r in session.scalars(fresh(DonationMonthKind))
    }
    assert {k: v for k, v in kinds.items() if v != (0, 0)} == {
        k: v for k, v in sums.items() if v != (0, 0)
    }
    return {
        (r.month, r.kind, r.currency, r.campaign_id, r.source, r.language): (r.net_minor, r.gifts)
        for r in rows
        if r.gifts
    }


def amounts(session: Session) -> dict[tuple[object, ...], int]:
    rows = session.scalars(fresh(DonationMonthAmount)).all()
    return {(r.month, r.currency, r.net_minor): r.gifts for r in rows if r.gifts}


def computed(session: Session) -> dict[tuple[object, ...], tuple[int, int]]:
    totals: dict[tuple[object, ...], tuple[int, int]] = {}
    paid = session.scalars(fresh(Donation).where(Donation.status == DonationStatus.PAID)).all()
    for d in paid:
        key = (
            f"{d.paid_at:%Y-%m}",
            str(d.kind),
            d.currency,
            d.campaign_id or 0,
            d.source,
            d.language,
        )
        net, gifts = totals.get(key, (0, 0))
        totals[key] = (net + d.amount_minor - d.refunded_minor - d.disputed_minor, gifts + 1)
    return totals


def test_triggers_follow_every_kind_of_write(db_session: Session) -> None:
    dataset.load(db_session)
    assert kept(db_session) == computed(db_session)
    donor = make_donor(db_session)
    gift = make_donation(db_session, donor=donor, amount_minor=3000, status=DonationStatus.PENDING)
    db_session.commit()
    assert kept(db_session) == computed(db_session)  # pending: nothing counted
    gift.status = DonationStatus.PAID
    gift.paid_at = datetime(2026, 11, 30, 23, 59, tzinfo=UTC)
    db_session.commit()
    assert kept(db_session) == computed(db_session)
    gift.refunded_minor = 1000  # a partial refund later
    db_session.commit()
    assert kept(db_session) == computed(db_session)
    gift.paid_at = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)  # moves to another month
    gift.source = "/en/a-story"
    db_session.commit()
    assert kept(db_session) == computed(db_session)
    db_session.delete(gift)
    db_session.commit()
    assert kept(db_session) == computed(db_session)
    # A bulk UPDATE through Core is followed too.
    db_session.execute(
        text("UPDATE donations SET disputed_minor = amount_minor WHERE currency = 'GBP'")
    )
    db_session.commit()
    assert kept(db_session) == computed(db_session)


def test_rebuild_gives_the_same_tables(db_session: Session) -> None:
    dataset.load(db_session)
    before, before_amounts = kept(db_session), amounts(db_session)
    rebuild(db_session.connection())
    db_session.commit()
    assert kept(db_session) == before and amounts(db_session) == before_amounts
    assert sum(amounts(db_session).values()) == db_session.scalar(
        select(func.count()).select_from(Donation).where(Donation.status == DonationStatus.PAID)
    )


def test_the_migration_installs_the_triggers_and_counts_what_is_there(tmp_path: object) -> None:
    from pathlib import Path

    from webapp.cli import upgrade_database
    from webapp.db import make_engine

    url = f"sqlite:///{Path(str(tmp_path)) / 'migrated.sqlite3'}"
    upgrade_database(url, "0007")
    engine = make_engine(url)
    insert = text(
        "INSERT INTO donors (email, name, language, created_at) VALUES ('x@example.org', '',"
        " 'en', '2026-01-01 00:00:00.000000');"
    )
    gift = text(
        "INSERT INTO donations (donor_id, kind, status, frequency, amount_minor,"
        " fee_covered_minor, currency, refunded_minor, disputed_minor, source, utm_source,"
        " utm_medium, utm_campaign, utm_content, utm_term, language, is_anonymous,"
        " wants_newsletter, note, created_at, paid_at) VALUES (1, 'one_time', 'paid',"
        " 'one_time', 1500, 0, 'EUR', 0, 0, '', '', '', '', '', '', 'en', 0, 0, '',"
        " '2026-03-02 10:00:00.000000', '2026-03-02 10:00:00.000000')"
    )
    with engine.begin() as connection:
        connection.execute(insert)
        connection.execute(gift)
    engine.dispose()
    upgrade_database(url)  # 0008: tables, triggers, and the gift already there
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(gift)  # and one more, through the trigger
        row = connection.execute(
            text("SELECT month, net_minor, gifts FROM donation_month_totals")
        ).one()
    engine.dispose()
    assert tuple(row) == ("2026-03", 3000, 2)


def plan_summaries(session: Session) -> tuple[object, ...]:
    from webapp.reports.summary import (
        DonorPlanCount,
        PlanCohortCount,
        PlanFailureMonth,
        PlanMonthDelta,
    )

    deltas = {
        (r.month, r.currency, r.campaign_id, r.source): (
            r.plans,
            r.monthly_minor,
            r.yearly_minor,
            r.started,
            r.cancelled,
            r.churned,
        )
        for r in session.scalars(fresh(PlanMonthDelta))
        if any((r.plans, r.monthly_minor, r.yearly_minor, r.started, r.cancelled, r.churned))
    }
    cohorts = {
        (r.start_month, r.end_month, r.currency, r.campaign_id, r.source): r.plans
        for r in session.scalars(fresh(PlanCohortCount))
        if r.plans
    }
    donors = {r.donor_id: r.plans for r in session.scalars(fresh(DonorPlanCount))}
    failures = {(r.month, r.plan_id): r.failures for r in session.scalars(fresh(PlanFailureMonth))}
    return deltas, cohorts, donors, failures


def test_plan_summaries_follow_plan_changes_and_match_a_rebuild(db_session: Session) -> None:
    from tests.donations.factories import make_plan
    from webapp.donations.models import Frequency, PlanStatus

    dataset.load(db_session)
    donor = make_donor(db_session)
    plan = make_plan(db_session, donor=donor, amount_minor=700, started_at=dataset.at(9, 9))
    db_session.commit()
    plan.status, plan.canceled_at = PlanStatus.CANCELED, dataset.at(11, 1)  # cancelled
    db_session.commit()
    plan.amount_minor, plan.interval = 8400, Frequency.YEARLY  # changed afterwards
    plan.stripe_state_at = dataset.at(11, 2)  # a column the summaries do not depend on
    db_session.commit()
    kept_now = plan_summaries(db_session)
    rebuild(db_session.connection())
    db_session.commit()
    assert plan_summaries(db_session) == kept_now
    db_session.delete(plan)
    db_session.commit()
    kept_after_delete = plan_summaries(db_session)
    rebuild(db_session.connection())
    db_session.commit()
    assert plan_summaries(db_session) == kept_after_delete


def test_failure_months_and_donor_counts_follow_every_write(db_session: Session) -> None:
    from tests.donations.factories import make_plan
    from webapp.donations.models import PlanFailure
    from webapp.reports.summary import DonorPlanCount, PlanFailureMonth

    dataset.load(db_session)
    donor = make_donor(db_session)
    first = make_plan(db_session, donor=donor, amount_minor=500, started_at=dataset.at(3, 1))
    second = make_plan(db_session, donor=donor, amount_minor=900, started_at=dataset.at(5, 1))
    db_session.flush()
    failures = [
        PlanFailure(plan_id=first.id, stripe_invoice_id=f"in_sum_{n}", failed_at=moment)
        for n, moment in enumerate(
            # Two invoices failing in one month count that month once for the plan; the
            # last instant of June (UTC) belongs to June.
            [dataset.at(6, 3), dataset.at(6, 20), datetime(2026, 6, 30, 23, 59, tzinfo=UTC)]
        )
    ]
    db_session.add_all(failures)
    db_session.commit()

    def months() -> dict[str, int]:
        rows = db_session.scalars(
            fresh(PlanFailureMonth).where(PlanFailureMonth.plan_id == first.id)
        )
        return {r.month: r.failures for r in rows}

    def donor_plans() -> int | None:
        return db_session.scalar(
            select(DonorPlanCount.plans).where(DonorPlanCount.donor_id == donor.id)
        )

    assert months() == {"2026-06": 3}
    assert donor_plans() == 2
    failures[2].failed_at = dataset.at(7, 2)  # moved to July
    db_session.commit()
    assert months() == {"2026-06": 2, "2026-07": 1}
    db_session.delete(failures[2])
    db_session.commit()
    assert months() == {"2026-06": 2}
    kept_now = plan_summaries(db_session)
    rebuild(db_session.connection())
    db_session.commit()
    assert plan_summaries(db_session) == kept_now
    db_session.delete(second)
    db_session.commit()
    assert donor_plans() == 1
    db_session.delete(first)  # its failures go with it (ON DELETE CASCADE on PostgreSQL)
    db_session.execute(text(f"DELETE FROM plan_failures WHERE plan_id = {first.id}"))
    db_session.commit()
    assert months() == {}
    assert donor_plans() is None


def test_subscriber_pairs_follow_every_write(db_session: Session) -> None:
    from tests.subscribers.factories import make_subscriber
    from webapp.reports import metrics
    from webapp.reports.summary import SubscriberMonthPair
    from webapp.subscribers.models import Subscriber

    def kept_pairs() -> dict[tuple[str, str, str], int]:
        rows = db_session.scalars(fresh(SubscriberMonthPair))
        return {
            (r.confirmed_month, r.left_month, r.status): r.subscribers
            for r in rows
            if r.subscribers
        }

    def computed_pairs() -> dict[tuple[str, str, str], int]:
        pairs: dict[tuple[str, str, str], int] = {}
        for s in db_session.scalars(fresh(Subscriber)):
            if s.status == "pending" and s.confirmed_at is None and s.unsubscribed_at is None:
                continue  # a signup that never confirmed nor left
            key = (
                f"{s.confirmed_at:%Y-%m}" if s.confirmed_at else "",
                f"{s.unsubscribed_at:%Y-%m}" if s.unsubscribed_at else "",
                str(s.status),
            )
            pairs[key] = pairs.get(key, 0) + 1
        return pairs

    dataset.load(db_session)
    assert kept_pairs() == computed_pairs()
    reader = make_subscriber(db_session, created_at=dataset.at(10, 30), status="pending")
    db_session.commit()
    assert kept_pairs() == computed_pairs()
    reader.status = "confirmed"  # type: ignore[assignment]
    reader.confirmed_at = datetime(2026, 10, 31, 23, 59, tzinfo=UTC)  # still October in UTC
    db_session.commit()
    reader.unsubscribed_at = dataset.at(11, 14)
    reader.status = "unsubscribed"  # type: ignore[assignment]
    db_session.commit()
    assert kept_pairs() == computed_pairs()
    confirmed = select(func.count()).select_from(Subscriber).where(Subscriber.status == "confirmed")
    assert metrics._confirmed_now(db_session) == db_session.scalar(confirmed)
    reader.soft_bounce_count = 1  # a column the pairs do not depend on
    db_session.commit()
    db_session.execute(text("UPDATE subscribers SET unsubscribed_at = NULL"))  # bulk, Core
    db_session.commit()
    assert kept_pairs() == computed_pairs()
    db_session.delete(reader)
    db_session.commit()
    assert kept_pairs() == computed_pairs()
    before = kept_pairs()
    rebuild(db_session.connection())
    db_session.commit()
    assert kept_pairs() == before
