"""Donors, their gifts (donations), recurring plans, campaigns, donation settings and the
Stripe events already applied.

The books rest on three rules, each enforced by the schema where it can be:

* one `Donation` per payment: the Checkout Session, the invoice and the PaymentIntent each
  have a unique column, so no path (webhook twice, webhook then reconciliation, checkout
  then first invoice) can count a payment twice;
* one `StripeEvent` row per Stripe event id, written in the same transaction as the
  event's effects, so an event is applied exactly once;
* statuses move only forward, by the tables `DONATION_MOVES` and `PLAN_MOVES`
  (`advance_donation`, `advance_plan`).
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ColumnElement,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    and_,
    or_,
    select,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.core.clock import as_utc
from webapp.core.states import IllegalMove, StateMachine
from webapp.db import Base, search_text, str_enum


class Frequency(enum.StrEnum):
    """How often a reader gives. The recurring values are Stripe's price intervals."""

    ONE_TIME = "one_time"
    MONTHLY = "month"
    YEARLY = "year"

    @property
    def is_recurring(self) -> bool:
        """True for monthly and yearly gifts (Stripe subscription mode)."""
        return self is not Frequency.ONE_TIME


class DonationKind(enum.StrEnum):
    """Where a donation's money came from."""

    #: A single card payment through Checkout.
    ONE_TIME = "one_time"
    #: One payment of a recurring plan (the first one and every renewal).
    RECURRING = "recurring"
    #: Recorded by staff by hand: bank transfer, cash, cheque, other.
    OFFLINE = "offline"


class DonationStatus(enum.StrEnum):
    """Where a donation stands. Refunds and disputes do not change it: they are amounts
    (`refunded_minor`, `disputed_minor`) taken out of `net_minor`."""

    #: A Checkout Session was opened; the reader has not paid (yet).
    PENDING = "pending"
    #: Checkout finished with a delayed payment method (e.g. SEPA debit) not yet settled.
    PROCESSING = "processing"
    #: The money arrived.
    PAID = "paid"
    #: The payment failed for good.
    FAILED = "failed"
    #: The reader never paid and the Checkout Session expired.
    EXPIRED = "expired"


class IllegalDonationMove(IllegalMove):
    """A donation status change that `DONATION_MOVES` does not allow."""


#: The order of a donation's life: a status only ever moves forward (down this list), so
#: applying the same statuses in any order ends on the same one (the furthest). A late
#: success after an expiry or failure can still happen (async methods, retries): paid is
#: last. `advance_donation` ignores any other move (a late "failed" after "paid").
DONATION_MOVES = StateMachine(
    "donation",
    {
        DonationStatus.PENDING: {
            DonationStatus.PROCESSING,
            DonationStatus.EXPIRED,
            DonationStatus.FAILED,
            DonationStatus.PAID,
        },
        DonationStatus.PROCESSING: {
            DonationStatus.EXPIRED,
            DonationStatus.FAILED,
            DonationStatus.PAID,
        },
        DonationStatus.EXPIRED: {DonationStatus.FAILED, DonationStatus.PAID},
        DonationStatus.FAILED: {DonationStatus.PAID},
        DonationStatus.PAID: set(),
    },
    error=IllegalDonationMove,
)


class PlanStatus(enum.StrEnum):
    """A recurring plan's state, Stripe's subscription statuses folded to what matters."""

    #: Created by Checkout, first payment not confirmed yet.
    INCOMPLETE = "incomplete"
    #: Paying.
    ACTIVE = "active"
    #: A renewal failed; Stripe is retrying.
    PAST_DUE = "past_due"
    #: Ended (by the donor, staff, or Stripe after failed retries). Final.
    CANCELED = "canceled"

    @property
    def precedence(self) -> int:
        """Tie-break between two states Stripe produced in the same second (its timestamps
        are whole seconds): the one a retry ends on (active) wins over past due."""
        return {"incomplete": 0, "past_due": 1, "active": 2, "canceled": 3}[self.value]

    @classmethod
    def from_stripe(cls, status: str) -> PlanStatus:
        """Map a Stripe subscription status onto ours."""
        return {
            "incomplete": cls.INCOMPLETE,
            "trialing": cls.ACTIVE,
            "active": cls.ACTIVE,
            "past_due": cls.PAST_DUE,
            "unpaid": cls.PAST_DUE,
            "paused": cls.PAST_DUE,
            "canceled": cls.CANCELED,
            "incomplete_expired": cls.CANCELED,
        }.get(status, cls.INCOMPLETE)


class IllegalPlanMove(IllegalMove):
    """A plan status change that `PLAN_MOVES` does not allow."""


#: A plan's life cycle: it starts incomplete, pays (active) or falls behind (past due),
#: and once cancelled it stays cancelled. Active and past due move both ways: between
#: them (and for a repeat of the same state) the newer event wins, then `precedence`
#: (`advance_plan`). A move written one way only (forward in the life cycle) always wins,
#: whatever the events' times; a move not written (back to incomplete, out of cancelled)
#: is ignored.
PLAN_MOVES = StateMachine(
    "plan",
    {
        PlanStatus.INCOMPLETE: {PlanStatus.ACTIVE, PlanStatus.PAST_DUE, PlanStatus.CANCELED},
        PlanStatus.ACTIVE: {PlanStatus.PAST_DUE, PlanStatus.CANCELED},
        PlanStatus.PAST_DUE: {PlanStatus.ACTIVE, PlanStatus.CANCELED},
        PlanStatus.CANCELED: set(),
    },
    error=IllegalPlanMove,
)


class OfflineMethod(enum.StrEnum):
    """How an offline gift was paid."""

    BANK_TRANSFER = "bank_transfer"
    CASH = "cash"
    CHEQUE = "cheque"
    OTHER = "other"


class Campaign(Base):
    """A fundraising drive with its own donation page `/donate/<slug>`, goal and deadline."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The URL part, lower-case letters, digits and dashes.
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    #: Title per language code, e.g. {"en": "Keep us independent", "ru": "..."}.
    titles: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    #: A paragraph per language shown above the form.
    descriptions: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    #: Goal in minor units of `currency`; None means no goal (progress is still shown).
    goal_minor: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: Currency of the goal; gifts in other currencies count at the staff's exchange rates.
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    #: After this moment the page says the campaign has ended (gifts still go to it).
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: Inactive campaigns answer 404 on their public page.
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    def title(self, language: str) -> str:
        """The title in `language`, else in English, else the slug."""
        return self.titles.get(language) or self.titles.get("en") or self.slug

    def description(self, language: str) -> str:
        """The description in `language`, else in English."""
        return self.descriptions.get(language) or self.descriptions.get("en") or ""


class Donor(Base):
    """A person who gave or started to give. Linked to a `Subscriber` by the same email."""

    __tablename__ = "donors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Normalised (lower-case) email address; the person's identity across the app.
    email: Mapped[str] = mapped_column(search_text(254), unique=True)
    #: Name as last given (optional).
    name: Mapped[str] = mapped_column(String(200), default="")
    #: Language of the last gift: receipts and emails use it.
    language: Mapped[str] = mapped_column(String(8), default="en")
    #: The Stripe customer, reused for every later gift by the same email.
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), unique=True, nullable=True)
    #: When the last self-service link was emailed (at most one per few minutes).
    access_link_sent_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    #: When the donor last had a statement emailed on request (at most one per window).
    statement_sent_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    donations: Mapped[list[Donation]] = relationship(back_populates="donor")
    plans: Mapped[list[Plan]] = relationship(back_populates="donor")


class Plan(Base):
    """A recurring gift (a Stripe subscription)."""

    __tablename__ = "plans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    donor_id: Mapped[int] = mapped_column(ForeignKey("donors.id"), index=True)
    #: The Stripe subscription id: one plan per subscription.
    stripe_subscription_id: Mapped[str] = mapped_column(String(255), unique=True)
    status: Mapped[PlanStatus] = mapped_column(str_enum(PlanStatus), default=PlanStatus.INCOMPLETE)
    #: "month" or "year".
    interval: Mapped[Frequency] = mapped_column(str_enum(Frequency), default=Frequency.MONTHLY)
    #: Amount charged each interval, in minor units of `currency`.
    amount_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"), nullable=True)
    #: The article or link that brought the donor (copied from the first gift).
    source: Mapped[str] = mapped_column(String(300), default="")
    #: When the first payment went through.
    started_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True, index=True
    )
    #: When it ended.
    canceled_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True, index=True
    )
    #: The donor asked to stop at the end of the paid period.
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)
    #: End of the period paid for; the next renewal is due then.
    current_period_end: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    #: When the last renewal failed (cleared by the next success).
    #: Indexed for the lapsed-donor report.
    last_failed_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True, index=True
    )
    #: Time of the newest status applied (an event's creation time): older ones are ignored.
    stripe_state_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: Time of the newest subscription terms applied (amount, currency, interval, cancel at
    #: period end): kept apart from the status time, as a renewal's `invoice.paid` moves the
    #: status but says nothing about the terms.
    terms_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    donor: Mapped[Donor] = relationship(back_populates="plans")
    campaign: Mapped[Campaign | None] = relationship()
    donations: Mapped[list[Donation]] = relationship(back_populates="plan")


def net_amount(row: Any) -> Any:
    """The one definition of a gift's net amount: its amount less what was refunded and what
    is under dispute. `row` is a `Donation` (an int comes back), the `Donation` class, an alias
    or any row with its columns (an SQL expression: reports, the summary triggers)."""
    return row.amount_minor - row.refunded_minor - row.disputed_minor


def paid_condition(row: Any) -> ColumnElement[bool]:
    """The one "counts as paid" rule, in SQL: the money arrived (status paid) and the gift has
    its payment time. `row` is the `Donation` class, an alias or any row with its columns (the
    summary triggers' OLD and NEW); `Donation.counts_as_paid` is the same rule."""
    return and_(row.status == DonationStatus.PAID, row.paid_at.is_not(None))


class Donation(Base):
    """One payment (or one attempt at one): a one-time gift, one payment of a plan, or an
    offline gift. Reports count the gifts that `counts_as_paid` at their `net_amount`."""

    __tablename__ = "donations"
    __table_args__ = (
        Index("ix_donations_status_paid_at", "status", "paid_at"),
        Index("ix_donations_donor_id_paid_at", "donor_id", "paid_at"),
        # A unique index rather than a constraint, so SQLite can add it to a live table.
        Index("ix_donations_receipt_seq", "receipt_seq", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    donor_id: Mapped[int] = mapped_column(ForeignKey("donors.id"))
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"), nullable=True, index=True)
    kind: Mapped[DonationKind] = mapped_column(str_enum(DonationKind))
    status: Mapped[DonationStatus] = mapped_column(
        str_enum(DonationStatus), default=DonationStatus.PENDING
    )
    #: What the reader chose; renewals carry their plan's interval.
    frequency: Mapped[Frequency] = mapped_column(str_enum(Frequency))
    #: Total charged, in minor units of `currency` (includes `fee_covered_minor`).
    amount_minor: Mapped[int] = mapped_column(Integer)
    #: The part of `amount_minor` the donor added to cover the card fee.
    fee_covered_minor: Mapped[int] = mapped_column(Integer, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    #: Money given back; taken out of every report.
    refunded_minor: Mapped[int] = mapped_column(Integer, default=0)
    #: Money under a card dispute (chargeback); taken out of every report.
    disputed_minor: Mapped[int] = mapped_column(Integer, default=0)
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaigns.id"), nullable=True, index=True
    )
    #: The article or link that brought the reader (`?source=`), free text.
    source: Mapped[str] = mapped_column(String(300), default="")
    utm_source: Mapped[str] = mapped_column(String(100), default="")
    utm_medium: Mapped[str] = mapped_column(String(100), default="")
    utm_campaign: Mapped[str] = mapped_column(String(100), default="")
    utm_content: Mapped[str] = mapped_column(String(100), default="")
    utm_term: Mapped[str] = mapped_column(String(100), default="")
    #: Language of the page the gift was made on: the receipt's language.
    language: Mapped[str] = mapped_column(String(8), default="en")
    #: The donor asked not to be named publicly.
    is_anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The donor ticked the newsletter box (a double opt-in starts when the gift is paid).
    wants_newsletter: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Idempotency key of the checkout form submission: a double click finds this row
    #: (and Stripe, given the same key, returns the same Checkout Session).
    checkout_key: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    stripe_checkout_session_id: Mapped[str | None] = mapped_column(
        String(255), unique=True, nullable=True
    )
    stripe_invoice_id: Mapped[str | None] = mapped_column(String(255), unique=True, nullable=True)
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(
        String(255), unique=True, nullable=True
    )
    stripe_charge_id: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    #: How an offline gift was paid.
    offline_method: Mapped[OfflineMethod | None] = mapped_column(
        str_enum(OfflineMethod), nullable=True
    )
    #: Bank reference or note for an offline gift.
    note: Mapped[str] = mapped_column(Text, default="")
    #: The staff member who recorded an offline gift.
    recorded_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL"), nullable=True
    )
    #: When staff acknowledged a refund or dispute in the donations list.
    refund_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: The receipt's serial number, given when the gift is paid (never to unpaid ones).
    receipt_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: When the receipt email was queued (once per paid donation).
    receipt_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: When the money arrived (or, offline, the date staff gave).
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    donor: Mapped[Donor] = relationship(back_populates="donations")
    plan: Mapped[Plan | None] = relationship(back_populates="donations")
    campaign: Mapped[Campaign | None] = relationship()

    @property
    def net_minor(self) -> int:
        """What the publication keeps: the net amount (`net_amount`), never negative."""
        return max(int(net_amount(self)), 0)

    @hybrid_property
    def counts_as_paid(self) -> bool:
        """True when the gift counts as money received (`paid_condition`, here in Python)."""
        return self.status == DonationStatus.PAID and self.paid_at is not None

    @counts_as_paid.inplace.expression
    @classmethod
    def _counts_as_paid_expression(cls) -> ColumnElement[bool]:
        return paid_condition(cls)

    @property
    def receipt_number(self) -> str:
        """The number printed on receipts and statements; empty until the gift is paid."""
        return f"R-{self.receipt_seq:06d}" if self.receipt_seq else ""


#: A current donor has a plan in one of these statuses (past due: Stripe is still retrying)...
CURRENT_DONOR_PLAN_STATUSES = (PlanStatus.ACTIVE, PlanStatus.PAST_DUE)
#: ...or a gift that counts as paid within this window.
CURRENT_DONOR_WINDOW = timedelta(days=365)


def current_donor_condition(now: datetime) -> ColumnElement[bool]:
    """The one "current donor" rule, in SQL on `Donor` (the README's glossary): an active or
    past-due plan, or a gift that counts as paid (`paid_condition`) in the
    `CURRENT_DONOR_WINDOW` up to `now`. The digest thanks current donors in its support block."""
    plan = (
        select(Plan.id)
        .where(Plan.donor_id == Donor.id, Plan.status.in_(CURRENT_DONOR_PLAN_STATUSES))
        .exists()
    )
    recent_gift = (
        select(Donation.id)
        .where(
            Donation.donor_id == Donor.id,
            paid_condition(Donation),
            Donation.paid_at >= as_utc(now) - CURRENT_DONOR_WINDOW,
        )
        .exists()
    )
    return or_(plan, recent_gift)


class ReceiptCounter(Base):
    """The last receipt number given (one row): numbers follow payments, without gaps."""

    __tablename__ = "receipt_counters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, default=1)
    last: Mapped[int] = mapped_column(Integer, default=0)


class DisputeStatus(enum.StrEnum):
    """Stripe's dispute statuses."""

    WARNING_NEEDS_RESPONSE = "warning_needs_response"
    WARNING_UNDER_REVIEW = "warning_under_review"
    WARNING_CLOSED = "warning_closed"
    NEEDS_RESPONSE = "needs_response"
    UNDER_REVIEW = "under_review"
    WON = "won"
    LOST = "lost"
    PREVENTED = "prevented"

    @property
    def withdraws_funds(self) -> bool:
        """True while Stripe holds the money (a chargeback open or lost). Inquiries
        (`warning_*`) never take money; `won` and `prevented` give it back."""
        return self in (
            DisputeStatus.NEEDS_RESPONSE,
            DisputeStatus.UNDER_REVIEW,
            DisputeStatus.LOST,
        )

    @property
    def precedence(self) -> int:
        """Tie-break at the same second: a chargeback over an inquiry, review over response."""
        return list(DisputeStatus).index(self)


class IllegalDisputeMove(IllegalMove):
    """A dispute status change that `DISPUTE_MOVES` does not allow."""


_OPEN_DISPUTE = (
    DisputeStatus.WARNING_NEEDS_RESPONSE,
    DisputeStatus.WARNING_UNDER_REVIEW,
    DisputeStatus.NEEDS_RESPONSE,
    DisputeStatus.UNDER_REVIEW,
)
_CLOSED_DISPUTE = (
    DisputeStatus.WARNING_CLOSED,
    DisputeStatus.WON,
    DisputeStatus.LOST,
    DisputeStatus.PREVENTED,
)

#: Closed disputes never reopen: a late "created" after "closed" is ignored. An open
#: dispute may move to any other state (open ones both ways, so the newer event wins); a
#: closed one only to another closed one (Stripe corrects an outcome), also newest first
#: (`advance_dispute`).
DISPUTE_MOVES = StateMachine(
    "dispute",
    {
        **{state: set(DisputeStatus) - {state} for state in _OPEN_DISPUTE},
        **{state: set(_CLOSED_DISPUTE) - {state} for state in _CLOSED_DISPUTE},
    },
    error=IllegalDisputeMove,
)


class Dispute(Base):
    """A card dispute (inquiry or chargeback) on a donation; the donation's
    `disputed_minor` is the sum of its disputes that hold money now."""

    __tablename__ = "disputes"

    #: Stripe's dispute id (`dp_...`).
    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    donation_id: Mapped[int] = mapped_column(
        ForeignKey("donations.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[DisputeStatus] = mapped_column(str_enum(DisputeStatus, 30))
    #: The disputed amount in minor units of the donation's currency.
    amount_minor: Mapped[int] = mapped_column(Integer)
    #: Creation time of the event whose state was applied: older states are ignored.
    state_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PlanFailure(Base):
    """A renewal of a plan that failed: one row per invoice, however often Stripe retried it.

    The plan keeps only its latest failure (`Plan.last_failed_at`); reports count failed
    plans per month from these rows, including failures that later recovered."""

    __tablename__ = "plan_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"), index=True)
    #: The failed invoice; unique, so Stripe's retries of one invoice are one failure.
    stripe_invoice_id: Mapped[str] = mapped_column(String(255), unique=True)
    #: When the first attempt failed (the event's time).
    failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class StripeEvent(Base):
    """A Stripe event received; the primary key makes applying it twice impossible.

    An event about something not recorded yet (a refund before its payment, a cancellation
    before its checkout) is parked: kept with its payload and the keys it waits for
    (`StripeEventWait`), and applied in the transaction that records that object."""

    __tablename__ = "stripe_events"

    #: Stripe's event id (`evt_...`).
    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    #: When Stripe created the event.
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    #: When we applied it.
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: "webhook" or "reconcile": how it reached us.
    via: Mapped[str] = mapped_column(String(20), default="webhook")
    #: What applying it did, in a few words (for staff and the log).
    outcome: Mapped[str] = mapped_column(String(300), default="")
    #: True while the event waits for the object it is about.
    parked: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    #: The event's `data.object`, kept only while parked (applied later from here).
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class StripeEventWait(Base):
    """One Stripe id a parked event waits for, as `<kind>:<id>` (e.g. `pi:pi_123`)."""

    __tablename__ = "stripe_event_waits"

    event_id: Mapped[str] = mapped_column(
        ForeignKey("stripe_events.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(300), primary_key=True, index=True)


class PlanChangeKind(enum.StrEnum):
    """What a donor asked to change about a plan."""

    AMOUNT = "amount"
    CANCEL = "cancel"


class PlanChange(Base):
    """A donor's request to change a plan, stored before Stripe is asked, so that a double
    click, two tabs or a retry after a timeout make one change at Stripe (the idempotency
    key comes from this row) and one confirmation email (sent when it is applied)."""

    __tablename__ = "plan_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"), index=True)
    kind: Mapped[PlanChangeKind] = mapped_column(str_enum(PlanChangeKind))
    #: The new amount (amount changes).
    amount_minor: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: Hash of the form's token and values (cancellations: one per plan, whatever the form),
    #: unique: the same submission finds its row again.
    request_key: Mapped[str] = mapped_column(String(64), unique=True)
    #: The idempotency key sent to Stripe: the same for every retry of this request, new
    #: after Stripe refused it (Stripe remembers a refusal under its key).
    stripe_key: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: When Stripe last refused or could not be reached; the next try gets a new key.
    failed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: When the plan was changed here and the confirmation queued; None while Stripe is
    #: being asked (or when it refused).
    applied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class DonorStatement(Base):
    """A yearly statement queued for a donor: the job sends each (donor, year) once."""

    __tablename__ = "donor_statements"
    __table_args__ = (UniqueConstraint("donor_id", "year"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    donor_id: Mapped[int] = mapped_column(ForeignKey("donors.id", ondelete="CASCADE"))
    year: Mapped[int] = mapped_column(Integer)
    #: When it was queued.
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def default_presets() -> dict[str, dict[str, list[int]]]:
    """Preset amounts in minor units per currency and frequency."""
    one_time = [1000, 2500, 5000, 10000]
    monthly = [500, 1000, 2000, 5000]
    yearly = [5000, 10000, 20000, 50000]
    return {
        currency: {"one_time": one_time, "month": monthly, "year": yearly}
        for currency in ("EUR", "USD", "GBP")
    }


class DonationSettings(Base):
    """What the donation page offers; one row, edited by fundraisers and admins."""

    __tablename__ = "donation_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, default=1)
    #: Currencies offered, in order, e.g. ["EUR", "USD", "GBP"].
    currencies: Mapped[list[str]] = mapped_column(JSON, default=lambda: ["EUR", "USD", "GBP"])
    #: Currency preselected per page language, e.g. {"en": "USD", "ru": "EUR"}.
    default_currency: Mapped[dict[str, str]] = mapped_column(
        JSON, default=lambda: {"en": "EUR", "ru": "EUR"}
    )
    #: Preset amounts in minor units: {currency: {frequency: [amounts]}}.
    presets: Mapped[dict[str, dict[str, list[int]]]] = mapped_column(JSON, default=default_presets)
    #: Smallest gift in minor units, the same number for every currency.
    minimum_minor: Mapped[int] = mapped_column(Integer, default=100)
    #: Largest gift in minor units through the page (bigger gifts: contact us / offline).
    maximum_minor: Mapped[int] = mapped_column(Integer, default=1_000_000)
    #: Card fee rate in basis points (1.5% = 150) used by "cover the card fee".
    fee_percent_bp: Mapped[int] = mapped_column(Integer, default=150)
    #: Fixed card fee per payment in minor units (e.g. 25 = €0.25).
    fee_fixed_minor: Mapped[int] = mapped_column(Integer, default=25)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    def presets_for(self, currency: str, frequency: Frequency | str) -> list[int]:
        """Preset amounts for one currency and frequency (empty if none are set)."""
        per_currency: dict[str, Any] = self.presets.get(currency, {})
        return list(per_currency.get(str(frequency), []))
