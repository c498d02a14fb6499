"""Erasure of a person also covers their donor record: the address and name go, the gifts
stay (amounts, dates, currencies, campaigns), so every total is the same afterwards."""

from __future__ import annotations

import secrets

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from webapp.donations.models import Donation, Donor


def erase_donor(session: Session, email: str, _subscriber_id: int) -> None:
    """Pseudonymise the donor with this address (an `ErasureHook`)."""
    donor = session.scalar(select(Donor).where(Donor.email == email.lower()))
    if donor is None:
        return
    donor.email = f"erased-donor-{donor.id}-{secrets.token_hex(6)}@erased.invalid"
    donor.name = ""
    donor.access_link_sent_at = None
    # Free-text notes on offline gifts may name the person.
    session.execute(
        update(Donation)
        .where(Donation.donor_id == donor.id)
        .values(note="")
        .execution_options(synchronize_session=False)
    )
    session.flush()
