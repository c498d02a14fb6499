"""Opening a Stripe Checkout Session for a gift, and reading one back for the thank-you page."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp.donations.gateway import CheckoutRequest, StripeGateway
from webapp.donations.models import Campaign, Donation, DonationKind, DonationStatus, Frequency
from webapp.donations.records import DonationConfig, find_or_create_donor

RESUME_PURPOSE = "donation-resume"


@dataclass(frozen=True)
class GiftRequest:
    """A validated donation form."""

    email: str
    name: str
    language: str
    frequency: Frequency
    gift_minor: int
    fee_minor: int
    currency: str
    checkout_token: str
    campaign: Campaign | None = None
    is_anonymous: bool = False
    wants_newsletter: bool = False
    source: str = ""
    utm: dict[str, str] = field(default_factory=dict)


def checkout_key(gift: GiftRequest) -> str:
    """The stored idempotency key of one form submission: its one-time token *and* its
    values. A double click sends both the same (one row, one Checkout); a donor who went
    Back and changed the amount, the frequency or a mistyped address sends other values
    with the same token, and gets a new gift and a new Checkout with the new values."""
    values = [
        gift.checkout_token,
        gift.email.strip().lower(),
        gift.name,
        gift.language,
        str(gift.frequency),
        str(gift.gift_minor),
        str(gift.fee_minor),
        gift.currency,
        str(gift.campaign.id if gift.campaign else ""),
        str(gift.is_anonymous),
        str(gift.wants_newsletter),
    ]
    return hashlib.sha256("\n".join(values).encode()).hexdigest()


def _customer_key(email: str, name: str) -> str:
    # Same person, same request: a retry reuses the key; the id alone would not do, as
    # Stripe remembers keys for a day and a key must always come with the same parameters.
    return "customer-" + hashlib.sha256(f"{email}\n{name}".encode()).hexdigest()[:40]


def product_name(frequency: Frequency, publication: str, language: str) -> str:
    """What Stripe's page and the card statement call the gift."""
    from flask_babel import force_locale
    from flask_babel import gettext as _

    with force_locale(language):
        if frequency == Frequency.MONTHLY:
            return _("Monthly gift to %(name)s", name=publication)
        if frequency == Frequency.YEARLY:
            return _("Yearly gift to %(name)s", name=publication)
        return _("Gift to %(name)s", name=publication)


def start_checkout(
    session: Session,
    gateway: StripeGateway,
    gift: GiftRequest,
    *,
    config: DonationConfig,
    publication: str,
    now: datetime,
) -> str:
    """Record the pending gift and open its Checkout Session; returns the URL to send the
    reader to. The same submission (a double click, even two requests at once) gives the
    same donation row and, through Stripe's idempotency key, the same session; a changed
    form (`checkout_key`) gives a new one.

    Raises `InvalidEmail` for an unusable address and `StripeUnavailable` when Stripe
    refuses or cannot be reached (the pending row is then committed without a session, and
    the next try with the same token opens it)."""
    key = checkout_key(gift)
    donation = session.scalar(select(Donation).where(Donation.checkout_key == key))
    if donation is None:
        donation = _new_pending(session, gift, key, now)
    donor = donation.donor
    if donor.stripe_customer_id is None:
        donor.stripe_customer_id = gateway.find_or_create_customer(
            donor.email, donor.name, idempotency_key=_customer_key(donor.email, donor.name)
        )
    session.commit()  # the row exists before Stripe hears of it: the webhook can find it
    language = gift.language
    base = f"{config.base_url}/{language}/donate"
    if donation.stripe_checkout_session_id:
        # The other click of a double click (or a retry after the reader came back).
        existing = gateway.retrieve_checkout_session(donation.stripe_checkout_session_id)
        if existing.get("status") == "open" and existing.get("url"):
            return str(existing["url"])
        if existing.get("status") == "complete":
            return f"{base}/thanks?session_id={existing['id']}"
    campaign_path = f"/{donation.campaign.slug}" if donation.campaign else ""
    resume = resume_token(donation.id, config.secret)
    frequency = Frequency(donation.frequency)
    checkout = gateway.create_checkout_session(
        CheckoutRequest(
            mode="subscription" if frequency.is_recurring else "payment",
            customer_id=str(donor.stripe_customer_id),
            amount_minor=donation.amount_minor,
            currency=donation.currency,
            interval=frequency.value if frequency.is_recurring else None,
            product_name=product_name(frequency, publication, language),
            description=product_name(frequency, publication, "en"),
            success_url=f"{base}/thanks?session_id={{CHECKOUT_SESSION_ID}}",
            cancel_url=f"{base}{campaign_path}?resume={resume}",
            locale=language,
            metadata={
                "donation_id": str(donation.id),
                "campaign": donation.campaign.slug if donation.campaign else "",
                "source": donation.source[:450],
            },
        ),
        idempotency_key=f"checkout-{key}",
    )
    if donation.stripe_checkout_session_id != checkout["id"]:
        donation.stripe_checkout_session_id = str(checkout["id"])
        session.commit()
    return str(checkout["url"])


def _new_pending(session: Session, gift: GiftRequest, key: str, now: datetime) -> Donation:
    donor = find_or_create_donor(
        session, gift.email, name=gift.name, language=gift.language, now=now
    )
    donation = Donation(
        # Ids, not objects: assigning related objects would cascade the row into the
        # session outside the savepoint below.
        donor_id=donor.id,
        kind=DonationKind.RECURRING if gift.frequency.is_recurring else DonationKind.ONE_TIME,
        status=DonationStatus.PENDING,
        frequency=gift.frequency,
        amount_minor=gift.gift_minor + gift.fee_minor,
        fee_covered_minor=gift.fee_minor,
        currency=gift.currency,
        campaign_id=gift.campaign.id if gift.campaign else None,
        source=gift.source,
        language=gift.language,
        is_anonymous=gift.is_anonymous,
        wants_newsletter=gift.wants_newsletter,
        checkout_key=key,
        created_at=now,
        **{name: value[:100] for name, value in gift.utm.items()},
    )
    try:
        with session.begin_nested():
            session.add(donation)
    except IntegrityError:
        # The other click of a double click got there first: use its row.
        existing = session.scalar(select(Donation).where(Donation.checkout_key == key))
        assert existing is not None
        return existing
    return donation


def resume_token(donation_id: int, secret: str) -> str:
    """The signed id in a Checkout "cancel" link. Deterministic (no timestamp), because a
    retried create call must send Stripe exactly the same parameters as the first."""
    return URLSafeSerializer(secret, salt=f"readership.{RESUME_PURPOSE}").dumps(donation_id)


def pending_for_resume(session: Session, token: str, *, secret: str) -> Donation | None:
    """The unpaid donation a "cancel" link from Checkout points at, or None."""
    try:
        donation_id = URLSafeSerializer(secret, salt=f"readership.{RESUME_PURPOSE}").loads(token)
    except (BadSignature, UnicodeError, ValueError):
        return None
    if not isinstance(donation_id, int):
        return None
    donation = session.get(Donation, donation_id)
    if donation is None or donation.status != DonationStatus.PENDING:
        return None
    return donation
