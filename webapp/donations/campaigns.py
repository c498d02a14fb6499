"""How far a campaign has come: the money raised (net of refunds and disputes) and donors."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.core.clock import as_utc
from webapp.donations.models import Campaign, Donation, DonationStatus, net_amount

RESERVED_SLUGS = frozenset({"manage", "thanks"})


@dataclass(frozen=True)
class CampaignProgress:
    """A campaign's totals: in its goal currency, and in other currencies apart."""

    raised_minor: int
    donors: int
    goal_minor: int | None
    currency: str
    #: Money in other currencies (no exchange rates applied), by currency.
    other_currencies: dict[str, int] = field(default_factory=dict)
    ends_at: datetime | None = None

    @property
    def percent(self) -> int:
        """Share of the goal reached, 0–100 (capped for the bar; the text shows the sum)."""
        if not self.goal_minor:
            return 0
        return min(100, int(self.raised_minor * 100 / self.goal_minor))

    def days_left(self, now: datetime) -> int | None:
        """Whole days until the deadline; 0 once it passed; None without a deadline."""
        if self.ends_at is None:
            return None
        return max(0, (as_utc(self.ends_at) - now).days)


def campaign_progress(session: Session, campaign: Campaign) -> CampaignProgress:
    """Totals of the paid gifts to `campaign`."""
    net = net_amount(Donation)
    rows = session.execute(
        select(Donation.currency, func.coalesce(func.sum(net), 0))
        .where(Donation.campaign_id == campaign.id, Donation.status == DonationStatus.PAID)
        .group_by(Donation.currency)
    ).all()
    totals = {currency: int(total) for currency, total in rows}
    donors = session.scalar(
        select(func.count(func.distinct(Donation.donor_id))).where(
            Donation.campaign_id == campaign.id, Donation.status == DonationStatus.PAID
        )
    )
    return CampaignProgress(
        raised_minor=totals.pop(campaign.currency, 0),
        donors=int(donors or 0),
        goal_minor=campaign.goal_minor,
        currency=campaign.currency,
        other_currencies=totals,
        ends_at=campaign.ends_at,
    )


def active_campaign(session: Session, slug: str) -> Campaign | None:
    """The active campaign with this slug, or None."""
    if slug in RESERVED_SLUGS:
        return None
    return session.scalar(
        select(Campaign).where(Campaign.slug == slug, Campaign.is_active.is_(True))
    )
