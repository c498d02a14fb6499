"""Donation test data, for any feature's tests.

from tests.donations.factories import make_donor, make_donation, make_plan, make_campaign

donor = make_donor(db_session, email="ann@example.com")
make_donation(db_session, donor=donor, amount_minor=1000, currency="EUR")
db_session.commit()
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from webapp.donations.models import (
    Campaign,
    Donation,
    DonationKind,
    DonationStatus,
    Donor,
    Frequency,
    Plan,
    PlanStatus,
)
from webapp.donations.services import assign_receipt_number

_counter = itertools.count(1)
WHEN = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)


def make_donor(
    session: Session,
    *,
    email: str | None = None,
    name: str = "",
    language: str = "en",
    stripe_customer_id: str | None = None,
    created_at: datetime | None = None,
) -> Donor:
    """A donor row (flushed)."""
    donor = Donor(
        email=(email or f"donor{next(_counter)}@example.com").lower(),
        name=name,
        language=language,
        stripe_customer_id=stripe_customer_id,
        created_at=created_at or WHEN,
    )
    session.add(donor)
    session.flush()
    return donor


def make_campaign(
    session: Session,
    *,
    slug: str | None = None,
    titles: dict[str, str] | None = None,
    goal_minor: int | None = 1_000_000,
    currency: str = "EUR",
    **fields: Any,
) -> Campaign:
    """A campaign row (flushed)."""
    campaign = Campaign(
        slug=slug or f"campaign-{next(_counter)}",
        titles=titles or {"en": "Keep us independent", "ru": "Сохраним независимость"},
        descriptions=fields.pop("descriptions", {"en": "Help us.", "ru": "Помогите нам."}),
        goal_minor=goal_minor,
        currency=currency,
        created_at=fields.pop("created_at", WHEN),
        **fields,
    )
    session.add(campaign)
    session.flush()
    return campaign


def make_plan(
    session: Session,
    *,
    donor: Donor,
    amount_minor: int = 1000,
    currency: str = "EUR",
    interval: Frequency = Frequency.MONTHLY,
    status: PlanStatus = PlanStatus.ACTIVE,
    stripe_subscription_id: str | None = None,
    **fields: Any,
) -> Plan:
    """A plan row (flushed)."""
    plan = Plan(
        donor=donor,
        stripe_subscription_id=stripe_subscription_id or f"sub_test_{next(_counter)}",
        amount_minor=amount_minor,
        currency=currency,
        interval=interval,
        status=status,
        started_at=fields.pop("started_at", WHEN),
        created_at=fields.pop("created_at", WHEN),
        **fields,
    )
    session.add(plan)
    session.flush()
    return plan


def make_donation(
    session: Session,
    *,
    donor: Donor,
    amount_minor: int = 1000,
    currency: str = "EUR",
    kind: DonationKind = DonationKind.ONE_TIME,
    status: DonationStatus = DonationStatus.PAID,
    frequency: Frequency | None = None,
    plan: Plan | None = None,
    paid_at: datetime | None = None,
    **fields: Any,
) -> Donation:
    """A donation row (flushed); paid by default."""
    if frequency is None:
        frequency = Frequency(plan.interval) if plan else Frequency.ONE_TIME
    donation = Donation(
        donor=donor,
        plan=plan,
        kind=DonationKind.RECURRING if plan and kind == DonationKind.ONE_TIME else kind,
        status=status,
        frequency=frequency,
        amount_minor=amount_minor,
        currency=currency,
        paid_at=paid_at or (WHEN if status == DonationStatus.PAID else None),
        created_at=fields.pop("created_at", WHEN),
        **fields,
    )
    session.add(donation)
    session.flush()
    if status == DonationStatus.PAID and "receipt_seq" not in fields:
        assign_receipt_number(session, donation)
    return donation


def make_pending_gift(
    session: Session,
    *,
    email: str = "reader@example.com",
    name: str = "",
    frequency: Frequency = Frequency.ONE_TIME,
    **fields: Any,
) -> Donation:
    """A new donor's gift whose Checkout was opened and not paid yet (flushed): what the
    donation form leaves behind, for webhook tests to pay, refund, expire..."""
    donor = make_donor(session, email=email, name=name)
    return make_donation(
        session,
        donor=donor,
        status=DonationStatus.PENDING,
        frequency=frequency,
        kind=DonationKind.RECURRING if frequency.is_recurring else DonationKind.ONE_TIME,
        stripe_checkout_session_id=fields.pop(
            "stripe_checkout_session_id", f"cs_test_pending{next(_counter)}"
        ),
        **fields,
    )
