"""Erasure of a person also covers their donor record: the address, the name and every id
that leads back to them (the Stripe customer, their payments' and plans' Stripe ids, the
checkout key) go; the gifts stay (amounts, dates, currencies, campaigns), so every total
is the same afterwards, and the same person can give again as a new donor.

A donor whose regular gift is still running is not erased: Stripe would go on charging
them, with nobody here to tell. Staff cancel the plan first (`ErasureBlocked` says so)."""

from __future__ import annotations

import secrets

from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from webapp.donations.models import Donation, Donor, Plan, PlanStatus
from webapp.subscribers.signals import ErasureBlocked


def erase_donor(session: Session, email: str, _subscriber_id: int | None) -> None:
    """Pseudonymise the donor with this address (run on the `erasing` signal of
    `webapp.subscribers.signals`, connected in `webapp.features`); raises `ErasureBlocked`
    while one of their regular gifts is still running."""
    donor = session.scalar(select(Donor).where(Donor.email == email.lower()))
    if donor is None:
        return
    running = session.scalar(
        select(Plan.id).where(Plan.donor_id == donor.id, Plan.status != PlanStatus.CANCELED)
    )
    if running is not None:
        raise ErasureBlocked(
            _(
                "This person has a regular gift that is still running: cancel it first "
                "(in Stripe's Dashboard), or Stripe goes on charging them."
            )
        )
    donor.email = f"erased-donor-{donor.id}-{secrets.token_hex(6)}@erased.invalid"
    donor.name = ""
    donor.stripe_customer_id = None
    donor.access_link_sent_at = None
    donor.statement_sent_at = None
    # Free-text notes on offline gifts may name the person; the Stripe ids lead to
    # Stripe's copy of them (a late refund of an erased gift stays parked, visibly).
    session.execute(
        update(Donation)
        .where(Donation.donor_id == donor.id)
        .values(
            note="",
            checkout_key=None,
            stripe_checkout_session_id=None,
            stripe_invoice_id=None,
            stripe_payment_intent_id=None,
            stripe_charge_id=None,
        )
        .execution_options(synchronize_session=False)
    )
    for plan in session.scalars(select(Plan).where(Plan.donor_id == donor.id)):
        plan.stripe_subscription_id = f"erased-{plan.id}"
    session.flush()
