"""The donation emails: receipts, failed payments, self-service links, plan changes and
yearly statements. Each function queues one outbox row in the caller's transaction, so an
email goes out exactly when (and only if) the change that caused it is committed."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from babel.dates import format_date
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from webapp.core.money import format_money
from webapp.donations.access import manage_url, request_access_url
from webapp.donations.models import Donation, DonationKind, Donor, Frequency, Plan
from webapp.donations.records import DonationConfig
from webapp.outbox.services import Mailer, queue_email


def _date(moment: datetime | None, language: str) -> str:
    return format_date(moment, format="long", locale=language) if moment else ""


def _language(donor: Donor, config: DonationConfig) -> str:
    return config.language_or_default(donor.language)


def queue_receipt_email(
    session: Session, mailer: Mailer, donation: Donation, *, config: DonationConfig, now: datetime
) -> int | None:
    """Queue the receipt for a paid donation, once; returns the outbox row id, or None when
    it was already queued."""
    if donation.receipt_sent_at is not None:
        return None
    donor = donation.donor
    language = config.language_or_default(donation.language or donor.language)
    campaign = donation.campaign
    frequency = Frequency(donation.frequency)
    # Compiled once per kind of receipt (language, frequency, renewal...); the gift's own
    # values are recipient fields, so a burst of webhooks never runs MJML per receipt.
    context: dict[str, Any] = {
        "frequency": frequency.value,
        "is_renewal": donation.kind == DonationKind.RECURRING
        and donation.stripe_checkout_session_id is None,
        "has_name": bool(donor.name),
        "has_campaign": campaign is not None,
        "has_fee": donation.fee_covered_minor > 0,
        "payment_method": _offline_label(donation, language),
        "manage_url": request_access_url(base_url=config.base_url, language=language),
    }
    recipient = {
        "donor_name": donor.name,
        "amount": format_money(donation.amount_minor, donation.currency, language),
        "paid_on": _date(donation.paid_at or now, language),
        "receipt_number": donation.receipt_number,
        "campaign_title": campaign.title(language) if campaign else "",
        "fee_covered": format_money(donation.fee_covered_minor, donation.currency, language),
    }
    message = queue_email(
        session,
        mailer,
        template="donation_receipt",
        to=donor.email,
        language=language,
        context=context,
        now=now,
        recipient=recipient,
    )
    donation.receipt_sent_at = now
    return message.id


def _offline_label(donation: Donation, language: str) -> str:
    if donation.kind != DonationKind.OFFLINE:
        return ""
    with force_locale(language):
        return {
            "bank_transfer": _("bank transfer"),
            "cash": _("cash"),
            "cheque": _("cheque"),
        }.get(str(donation.offline_method or ""), _("other"))


def queue_payment_failed_email(
    session: Session,
    mailer: Mailer,
    plan: Plan,
    *,
    amount_minor: int,
    next_attempt: datetime | None,
    config: DonationConfig,
    now: datetime,
) -> int:
    """Queue "your gift did not go through" with a self-service link to fix the card."""
    donor = plan.donor
    language = _language(donor, config)
    context = {
        "donor_name": donor.name,
        "amount": format_money(amount_minor, plan.currency, language),
        "frequency": Frequency(plan.interval).value,
        "update_card_url": manage_url(
            donor, base_url=config.base_url, secret=config.secret, language=language, now=now
        ),
        "next_attempt_on": _date(next_attempt, language),
    }
    return queue_email(
        session,
        mailer,
        template="donation_payment_failed",
        to=donor.email,
        language=language,
        context=context,
        now=now,
    ).id


def queue_donor_access_email(
    session: Session,
    mailer: Mailer,
    donor: Donor,
    *,
    language: str,
    config: DonationConfig,
    now: datetime,
) -> int:
    """Queue the signed self-service link; returns the outbox row id."""
    context = {
        "manage_url": manage_url(
            donor, base_url=config.base_url, secret=config.secret, language=language, now=now
        ),
        "link_valid_hours": int(config.donor_link_max_age.total_seconds() // 3600),
    }
    return queue_email(
        session,
        mailer,
        template="donor_access",
        to=donor.email,
        language=language,
        context=context,
        now=now,
    ).id


def queue_plan_changed_email(
    session: Session,
    mailer: Mailer,
    plan: Plan,
    *,
    change: str,
    config: DonationConfig,
    now: datetime,
) -> int:
    """Queue the confirmation of a donor's change ("amount" or "canceled")."""
    donor = plan.donor
    language = _language(donor, config)
    context = {
        "donor_name": donor.name,
        "change": change,
        "amount": format_money(plan.amount_minor, plan.currency, language),
        "frequency": Frequency(plan.interval).value,
        "manage_url": request_access_url(base_url=config.base_url, language=language),
    }
    return queue_email(
        session,
        mailer,
        template="donation_plan_changed",
        to=donor.email,
        language=language,
        context=context,
        now=now,
    ).id


def kind_label(donation: Donation, language: str) -> str:
    """ "One-time gift", "Monthly gift", "Yearly gift" or "Offline gift" in `language`."""
    with force_locale(language):
        if donation.kind == DonationKind.OFFLINE:
            return _("Offline gift")
        return {
            Frequency.MONTHLY: _("Monthly gift"),
            Frequency.YEARLY: _("Yearly gift"),
        }.get(Frequency(donation.frequency), _("One-time gift"))


def queue_yearly_statement_email(
    session: Session,
    mailer: Mailer,
    donor: Donor,
    donations: list[Donation],
    *,
    year: int,
    config: DonationConfig,
    now: datetime,
) -> int:
    """Queue one donor's statement of the year's gifts (net of refunds), with totals per
    currency."""
    language = _language(donor, config)
    totals: dict[str, int] = defaultdict(int)
    gifts = []
    for donation in donations:
        totals[donation.currency] += donation.net_minor
        gifts.append(
            {
                "date": _date(donation.paid_at, language),
                "amount": format_money(donation.net_minor, donation.currency, language),
                "kind": kind_label(donation, language),
                "receipt_number": donation.receipt_number,
                "campaign": donation.campaign.title(language) if donation.campaign else "",
            }
        )
    context = {
        "donor_name": donor.name,
        "year": year,
        "gifts": gifts,
        "totals": [format_money(total, cur, language) for cur, total in sorted(totals.items())],
        "manage_url": request_access_url(base_url=config.base_url, language=language),
    }
    return queue_email(
        session,
        mailer,
        template="yearly_statement",
        to=donor.email,
        language=language,
        context=context,
        now=now,
    ).id
