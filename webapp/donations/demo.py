"""Demo donations for `readership demo`: a campaign, one-time and regular gifts over the last
year, an offline gift, a refund and a dispute, so the staff pages and the campaign page have
something true-looking to show. Stripe ids are made up (`*_demo_*`): the self-service buttons
that call Stripe answer with their "try again later" message for these."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.donations.models import (
    PLAN_MOVES,
    Campaign,
    Donation,
    DonationKind,
    DonationStatus,
    Donor,
    Frequency,
    OfflineMethod,
    Plan,
    PlanStatus,
)
from webapp.donations.records import number_unnumbered_receipts

FIRST_NAMES = [
    "Anna",
    "Boris",
    "Clara",
    "David",
    "Elena",
    "Felix",
    "Galina",
    "Hugo",
    "Irina",
    "Jonas",
    "Katya",
    "Leon",
    "Maria",
    "Nikolai",
    "Olga",
    "Pavel",
    "Sofia",
    "Timur",
]


def load_demo_donations(session: Session, *, now: datetime, donors: int = 60) -> int:
    """Add demo donors and gifts unless there are donors already; returns donors added."""
    if session.scalar(select(Donor.id).limit(1)) is not None:
        return 0
    rng = random.Random(20261128)
    campaign = Campaign(
        slug="keep-us-independent",
        titles={"en": "Keep The Meridian independent", "ru": "Сохраним «Меридиан» независимым"},
        descriptions={
            "en": "No owner, no paywall, no state money. Help us fund a year of reporting.",
            "ru": "Ни владельца, ни платного доступа, ни государственных денег. Помогите "
            "оплатить год нашей работы.",
        },
        goal_minor=5_000_000,
        currency="EUR",
        ends_at=now + timedelta(days=33),
        is_active=True,
        created_at=now - timedelta(days=60),
    )
    session.add(campaign)
    for index in range(donors):
        name = rng.choice(FIRST_NAMES)
        language = "ru" if rng.random() < 0.55 else "en"
        currency = rng.choices(["EUR", "USD", "GBP"], weights=[6, 3, 1])[0]
        started = now - timedelta(days=rng.randint(5, 360))
        donor = Donor(
            email=f"{name.lower()}.{index}@demo-readers.example",
            name=name,
            language=language,
            stripe_customer_id=f"cus_demo_{index}",
            created_at=started,
        )
        session.add(donor)
        in_campaign = campaign if rng.random() < 0.4 else None
        source = rng.choice(
            ["", "", "article-sanctions-explained", "article-election-guide", "newsletter"]
        )
        if rng.random() < 0.45:
            amount = rng.choice([500, 1000, 1000, 2000, 5000])
            plan = Plan(
                donor=donor,
                stripe_subscription_id=f"sub_demo_{index}",
                status=PlanStatus.ACTIVE,
                interval=Frequency.MONTHLY,
                amount_minor=amount,
                currency=currency,
                campaign=in_campaign,
                source=source,
                started_at=started,
                created_at=started,
                current_period_end=now + timedelta(days=rng.randint(1, 30)),
            )
            if rng.random() < 0.15:
                PLAN_MOVES.move(plan, PlanStatus.CANCELED)
                plan.canceled_at = started + timedelta(days=rng.randint(31, 120))
            session.add(plan)
            paid_at = started
            month = 0
            while paid_at < min(now, plan.canceled_at or now):
                session.add(
                    Donation(
                        donor=donor,
                        plan=plan,
                        kind=DonationKind.RECURRING,
                        status=DonationStatus.PAID,
                        frequency=Frequency.MONTHLY,
                        amount_minor=amount,
                        currency=currency,
                        campaign=in_campaign,
                        source=source,
                        language=language,
                        created_at=paid_at,
                        paid_at=paid_at,
                        stripe_invoice_id=f"in_demo_{index}_{month}",
                    )
                )
                month += 1
                paid_at = started + timedelta(days=30 * month)
        else:
            amount = rng.choice([1000, 2500, 2500, 5000, 10000, 25000])
            refunded = amount if rng.random() < 0.05 else 0
            session.add(
                Donation(
                    donor=donor,
                    kind=DonationKind.ONE_TIME,
                    status=DonationStatus.PAID,
                    frequency=Frequency.ONE_TIME,
                    amount_minor=amount,
                    currency=currency,
                    campaign=in_campaign,
                    source=source,
                    language=language,
                    created_at=started,
                    paid_at=started,
                    refunded_minor=refunded,
                    stripe_payment_intent_id=f"pi_demo_{index}",
                    is_anonymous=rng.random() < 0.2,
                )
            )
    offline_donor = Donor(
        email="foundation@demo-readers.example",
        name="Open Press Fund",
        language="en",
        created_at=now - timedelta(days=20),
    )
    session.add(offline_donor)
    session.add(
        Donation(
            donor=offline_donor,
            kind=DonationKind.OFFLINE,
            status=DonationStatus.PAID,
            frequency=Frequency.ONE_TIME,
            amount_minor=500_000,
            currency="EUR",
            campaign=campaign,
            language="en",
            offline_method=OfflineMethod.BANK_TRANSFER,
            note="Grant, 2nd tranche",
            created_at=now - timedelta(days=20),
            paid_at=now - timedelta(days=20),
        )
    )
    session.flush()
    number_unnumbered_receipts(session)
    return donors + 1
