"""Offline gifts: a bank transfer, cash or a cheque recorded by staff by hand."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from webapp.donations import mail
from webapp.donations.models import (
    Donation,
    DonationKind,
    DonationStatus,
    Frequency,
    OfflineMethod,
)
from webapp.donations.records import (
    DonationConfig,
    assign_receipt_number,
    find_or_create_donor,
)
from webapp.outbox.services import Mailer
from webapp.staff.models import StaffUser
from webapp.staff.services import record_audit


@dataclass(frozen=True)
class OfflineGift:
    """What staff entered."""

    email: str
    name: str
    amount_minor: int
    currency: str
    received_at: datetime
    method: OfflineMethod
    note: str = ""
    campaign_id: int | None = None
    source: str = ""
    language: str = "en"
    send_receipt: bool = False


def record_offline_gift(
    session: Session,
    mailer: Mailer,
    gift: OfflineGift,
    *,
    staff: StaffUser | None,
    config: DonationConfig,
    ip: str | None,
    now: datetime,
) -> tuple[Donation, int | None]:
    """A paid offline donation (audit-logged), and the receipt's outbox id when asked for.
    The caller commits."""
    donor = find_or_create_donor(
        session, gift.email, name=gift.name, language=gift.language, now=now
    )
    donation = Donation(
        donor_id=donor.id,
        kind=DonationKind.OFFLINE,
        status=DonationStatus.PAID,
        frequency=Frequency.ONE_TIME,
        amount_minor=gift.amount_minor,
        currency=gift.currency,
        campaign_id=gift.campaign_id,
        source=gift.source,
        language=gift.language,
        offline_method=gift.method,
        note=gift.note,
        recorded_by_id=getattr(staff, "id", None),
        created_at=now,
        paid_at=gift.received_at,
    )
    session.add(donation)
    session.flush()
    assign_receipt_number(session, donation)
    record_audit(
        session,
        actor=staff,
        action="donations.offline_gift",
        target_type="donation",
        target_id=donation.id,
        details={
            "amount": gift.amount_minor,
            "currency": gift.currency,
            "method": gift.method.value,
            "donor_id": donor.id,
        },
        ip=ip,
        now=now,
    )
    receipt = None
    if gift.send_receipt:
        receipt = mail.queue_receipt_email(session, mailer, donation, config=config, now=now)
    return donation, receipt
