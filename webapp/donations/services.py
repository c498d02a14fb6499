"""Donors and the state machines of donations and plans, shared by checkout, the webhook
books, self-service and the staff pages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp.donations.models import (
    DONATION_TRANSITIONS,
    Donation,
    DonationSettings,
    DonationStatus,
    Donor,
    Plan,
    PlanStatus,
)
from webapp.subscribers.addresses import normalise_email

#: Flask-Limiter limits for opening a checkout, per client IP.
DEFAULT_DONATE_RATE_LIMIT = "10 per minute;60 per hour"
#: At most this many checkouts per email address per hour (many IPs, one address).
DEFAULT_DONATE_EMAIL_LIMIT = "10 per hour"
#: Limits for asking for a self-service link, per client IP.
DEFAULT_DONOR_LINK_RATE_LIMIT = "5 per minute;30 per hour"


@dataclass(frozen=True)
class DonationConfig:
    """The configuration donation services depend on, gathered once per call site."""

    #: Public base URL of the app (no trailing slash).
    base_url: str
    #: Signs self-service links.
    secret: str
    #: Languages the site offers; the first is the default.
    languages: tuple[str, ...]
    #: How long a self-service link works.
    donor_link_max_age: timedelta

    def language_or_default(self, language: str | None) -> str:
        """`language` when offered, else the default language."""
        return language if language in self.languages else (self.languages or ("en",))[0]


def donation_config(config: Mapping[str, Any]) -> DonationConfig:
    """`DonationConfig` from a Flask app's config."""
    return DonationConfig(
        base_url=str(config["BASE_URL"]).rstrip("/"),
        secret=str(config["SECRET_KEY"]),
        languages=tuple(config["LANGUAGES"]),
        donor_link_max_age=timedelta(hours=int(config.get("DONOR_LINK_MAX_AGE_HOURS", 72))),
    )


def get_donation_settings(session: Session) -> DonationSettings:
    """The donation settings row, created with defaults on first use."""
    settings = session.get(DonationSettings, 1)
    if settings is None:
        settings = DonationSettings(id=1)
        try:
            with session.begin_nested():
                session.add(settings)
        except IntegrityError:
            settings = session.get(DonationSettings, 1)
    assert settings is not None
    return settings


def find_donor(session: Session, email: str) -> Donor | None:
    """The donor with this address (any spelling of it), or None."""
    try:
        normalised = normalise_email(email)
    except ValueError:
        return None
    return session.scalar(select(Donor).where(Donor.email == normalised))


def find_or_create_donor(
    session: Session, email: str, *, name: str = "", language: str = "en", now: datetime
) -> Donor:
    """The donor with this address, created when new. A given name and the language of the
    latest gift replace the stored ones. Raises `InvalidEmail` for an unusable address."""
    normalised = normalise_email(email)
    donor = session.scalar(select(Donor).where(Donor.email == normalised))
    if donor is None:
        candidate = Donor(email=normalised, name=name[:200], language=language, created_at=now)
        try:
            with session.begin_nested():
                session.add(candidate)
            return candidate
        except IntegrityError:
            # A parallel request created the same donor a moment ago.
            donor = session.scalar(select(Donor).where(Donor.email == normalised))
            assert donor is not None
    if name and donor.name != name[:200]:
        donor.name = name[:200]
    donor.language = language
    donor.updated_at = now
    return donor


def advance_donation(donation: Donation, status: DonationStatus, *, now: datetime) -> bool:
    """Move a donation forward to `status`; False (and nothing changes) when that would be
    a step back or sideways, e.g. a late "failed" after "paid"."""
    current = DonationStatus(donation.status)
    if status == current or status not in DONATION_TRANSITIONS[current]:
        return False
    donation.status = status
    donation.updated_at = now
    if status == DonationStatus.PAID and donation.paid_at is None:
        donation.paid_at = now
    return True


def advance_plan(
    plan: Plan, status: PlanStatus, *, state_at: datetime | None, now: datetime
) -> bool:
    """Move a plan to `status` as of `state_at` (when Stripe produced that state).

    A plan never goes back to a lower stage (`PlanStatus.rank`): once cancelled it stays
    cancelled. Between active and past due, the newer state wins; an older one is ignored.
    """
    current = PlanStatus(plan.status)
    if status.rank < current.rank:
        return False
    newer_known = state_at is not None and plan.stripe_state_at is not None
    if (
        status.rank == current.rank
        and status != current
        and newer_known
        and state_at < _aware(plan.stripe_state_at)  # type: ignore[arg-type,operator]
    ):
        return False
    if state_at is not None and (
        plan.stripe_state_at is None or state_at >= _aware(plan.stripe_state_at)
    ):
        plan.stripe_state_at = state_at
    if status == current:
        return False
    plan.status = status
    plan.updated_at = now
    if status == PlanStatus.CANCELED and plan.canceled_at is None:
        plan.canceled_at = state_at or now
    if status == PlanStatus.ACTIVE and plan.started_at is None:
        plan.started_at = state_at or now
    return True


def _aware(moment: datetime) -> datetime:
    from webapp.core.clock import as_utc

    return as_utc(moment)
