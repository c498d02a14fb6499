"""A small supporter history with every awkward case, and its figures worked out by hand.

Base currency EUR; rates USD 0.9, GBP 1.2. "Now" is 2026-11-15 12:00 UTC.

Plans (all start when their first payment went through):
  P1 A  EUR 10/month  started 2026-08-10; a renewal failed 2026-11-08 and recovered
  P2 B  USD 20/month  started 2026-09-05, cancelled 2026-11-10 (mid-month)
  P3 C  GBP 120/year  started 2026-10-01 10:00
  P4 D  EUR 5/month   started 2026-11-03
  P5 E  EUR 15/month  started 2026-07-01, cancelled 2026-10-20
  P6 F  EUR 50/month  never started (checkout abandoned) — counts nowhere

Single gifts:
  A EUR 100 one-time 2026-11-05, 30 refunded  -> net 70
  B USD 50  one-time 2026-11-06, disputed     -> net 0
  C GBP 40  offline  2026-11-07               -> net 40
  D EUR 25  one-time 2026-10-12               -> October
  F EUR 999 one-time failed, F EUR 10 pending -> count nowhere
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from tests.donations.factories import make_donation, make_donor, make_plan
from tests.subscribers.factories import make_subscriber
from webapp.donations.models import DonationKind, DonationStatus, Frequency, PlanFailure, PlanStatus
from webapp.reports.rates import set_rate

NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)


def at(month: int, day: int, hour: int = 9) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=UTC)


def load(session: Session) -> None:
    """Write the dataset (committed)."""
    set_rate(session, "USD", Decimal("0.9"), now=NOW, staff_id=None)
    set_rate(session, "GBP", Decimal("1.2"), now=NOW, staff_id=None)
    a, b, c, d, e, f = (make_donor(session, email=f"{n}@example.org") for n in "abcdef")
    p1 = make_plan(session, donor=a, amount_minor=1000, started_at=at(8, 10))
    make_plan(
        session,
        donor=b,
        amount_minor=2000,
        currency="USD",
        started_at=at(9, 5),
        status=PlanStatus.CANCELED,
        canceled_at=at(11, 10),
    )
    make_plan(
        session,
        donor=c,
        amount_minor=12000,
        currency="GBP",
        interval=Frequency.YEARLY,
        started_at=at(10, 1, 10),
    )
    make_plan(session, donor=d, amount_minor=500, started_at=at(11, 3))
    make_plan(
        session,
        donor=e,
        amount_minor=1500,
        started_at=at(7, 1),
        status=PlanStatus.CANCELED,
        canceled_at=at(10, 20),
    )
    make_plan(session, donor=f, amount_minor=5000, started_at=None, status=PlanStatus.INCOMPLETE)
    session.add(PlanFailure(plan_id=p1.id, stripe_invoice_id="in_failed_1", failed_at=at(11, 8)))
    make_donation(session, donor=a, plan=p1, amount_minor=1000, paid_at=at(11, 10))
    make_donation(session, donor=a, amount_minor=10000, paid_at=at(11, 5), refunded_minor=3000)
    make_donation(
        session, donor=b, amount_minor=5000, currency="USD", paid_at=at(11, 6), disputed_minor=5000
    )
    make_donation(
        session,
        donor=c,
        amount_minor=4000,
        currency="GBP",
        paid_at=at(11, 7),
        kind=DonationKind.OFFLINE,
    )
    make_donation(session, donor=d, amount_minor=2500, paid_at=at(10, 12))
    make_donation(session, donor=f, amount_minor=99900, status=DonationStatus.FAILED)
    make_donation(session, donor=f, amount_minor=1000, status=DonationStatus.PENDING)
    # Subscribers: two confirmed long ago, one this week, one who left this week.
    make_subscriber(session, created_at=at(9, 1))
    make_subscriber(session, created_at=at(9, 2))
    make_subscriber(session, created_at=at(11, 12))
    make_subscriber(session, created_at=at(9, 3), status="unsubscribed", unsubscribed_at=at(11, 13))
    session.commit()
