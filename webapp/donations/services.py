"""The donations feature's public face: what jobs, reports, the digest and the feature's own
views call. The work happens in the feature's private modules (`records` for donors and the
state moves, `books` for Stripe events, `reconcile`, `statements`, `campaigns`, `gateway`);
this module only names the use cases other code may rely on."""

from __future__ import annotations

from webapp.donations.books import BooksContext, books_context
from webapp.donations.campaigns import CampaignProgress, campaign_progress
from webapp.donations.gateway import StripeGateway, get_gateway
from webapp.donations.reconcile import reconcile_stripe
from webapp.donations.records import (
    DEFAULT_DONATE_EMAIL_LIMIT,
    DEFAULT_DONATE_RATE_LIMIT,
    DEFAULT_DONOR_LINK_RATE_LIMIT,
    DonationConfig,
    advance_dispute,
    advance_donation,
    advance_plan,
    assign_receipt_number,
    donation_config,
    earliest,
    find_donor,
    find_or_create_donor,
    get_donation_settings,
    number_unnumbered_receipts,
    sync_receipt_counter,
)
from webapp.donations.statements import queue_yearly_statements

__all__ = [
    "DEFAULT_DONATE_EMAIL_LIMIT",
    "DEFAULT_DONATE_RATE_LIMIT",
    "DEFAULT_DONOR_LINK_RATE_LIMIT",
    "BooksContext",
    "CampaignProgress",
    "DonationConfig",
    "StripeGateway",
    "advance_dispute",
    "advance_donation",
    "advance_plan",
    "assign_receipt_number",
    "books_context",
    "campaign_progress",
    "donation_config",
    "earliest",
    "find_donor",
    "find_or_create_donor",
    "get_donation_settings",
    "get_gateway",
    "number_unnumbered_receipts",
    "queue_yearly_statements",
    "reconcile_stripe",
    "sync_receipt_counter",
]
