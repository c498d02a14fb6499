"""Public donation pages: `/donate`, campaign pages `/donate/<slug>`, and the thank-you page.

Every page exists with and without a language prefix (`/donate`, `/ru/donate`).
"""

from __future__ import annotations

import hashlib
from typing import Any

from flask import Blueprint, abort, current_app, redirect, render_template, request
from flask_babel import gettext as _
from limits import parse_many

from webapp.core.clock import utcnow
from webapp.core.limits import limiter
from webapp.db import begin_writing, get_database, get_session
from webapp.donations import checkout as checkout_service
from webapp.donations.books import apply_checkout_session, apply_waiting, books_context
from webapp.donations.campaigns import active_campaign, campaign_progress
from webapp.donations.forms import FREQUENCY_VALUES, UTM_FIELDS, DonationForm
from webapp.donations.gateway import StripeUnavailable, get_gateway
from webapp.donations.models import Campaign, Donation, DonationStatus, Frequency
from webapp.donations.services import donation_config, get_donation_settings
from webapp.i18n import current_language, public_route
from webapp.outbox.services import deliver_now, get_mailer
from webapp.site.services import get_site_settings

bp = Blueprint(
    "donations",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/donations/assets",
)


def _donate_limit() -> str:
    return str(current_app.config["DONATE_RATE_LIMIT"])


# One per-IP budget for opening checkouts, whatever the page (campaign or not).
_checkout_limit = limiter.shared_limit(_donate_limit, scope="donate", methods=["POST"])


def _email_allowed(email: str) -> bool:
    """Per-address budget (many IPs, one address): a card-testing bot rotates IPs."""
    key = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    strategy = limiter.limiter
    return all(
        strategy.hit(item, "donate-email", key)
        for item in parse_many(str(current_app.config["DONATE_EMAIL_LIMIT"]))
    )


def _render(
    form: DonationForm, campaign: Campaign | None, status: int = 200, notice: str | None = None
) -> Any:
    session = get_session()
    settings = form.settings
    language = current_language()
    progress = campaign_progress(session, campaign) if campaign else None
    presets = {
        currency: {
            FREQUENCY_VALUES[frequency]: settings.presets_for(currency, frequency)
            for frequency in Frequency
        }
        for currency in settings.currencies
    }
    body = render_template(
        "donations/donate.html",
        form=form,
        campaign=campaign,
        progress=progress,
        presets=presets,
        language=language,
        notice=notice,
        now=utcnow(),
    )
    return body, status


def _prefill_from_query(form: DonationForm) -> None:
    """`?source=` and `utm_*` from the link that brought the reader, and choices in links
    like `?currency=USD&frequency=monthly&amount=25`."""
    args = request.args
    form.source.data = (args.get("source") or args.get("ref") or "")[:300]
    for name in UTM_FIELDS:
        getattr(form, name).data = (args.get(name) or "")[:100]
    currency = (args.get("currency") or "").upper()
    if currency in form.settings.currencies:
        form.currency.data = currency
    frequency = args.get("frequency")
    if frequency:
        form.frequency.data = form.frequency.filters[0](frequency)
    if args.get("amount"):
        form.amount.data = args["amount"][:12]


def _resume(form: DonationForm, token: str) -> bool:
    donation = checkout_service.pending_for_resume(
        get_session(), token, secret=current_app.config["SECRET_KEY"]
    )
    if donation is None:
        return False
    from webapp.core.money import format_plain

    form.frequency.data = FREQUENCY_VALUES[Frequency(donation.frequency)]
    form.currency.data = donation.currency
    gift = donation.amount_minor - donation.fee_covered_minor
    form.custom_amount.data = format_plain(gift, donation.currency)
    form.amount.data = "other"
    form.email.data = donation.donor.email
    form.name.data = donation.donor.name
    form.cover_fee.data = donation.fee_covered_minor > 0
    form.anonymous.data = donation.is_anonymous
    form.subscribe.data = donation.wants_newsletter
    form.source.data = donation.source
    for name in UTM_FIELDS:
        getattr(form, name).data = getattr(donation, name)
    return True


def _donate(campaign: Campaign | None) -> Any:
    session = get_session()
    form = DonationForm(settings=get_donation_settings(session), language=current_language())
    if request.method == "GET":
        _prefill_from_query(form)
        notice = None
        if request.args.get("resume") and _resume(form, request.args["resume"]):
            notice = _(
                "Your payment was cancelled; nothing was charged. Your choices are kept "
                "below if you would like to try again."
            )
        return _render(form, campaign, notice=notice)
    if form.is_bot():
        return _render(form, campaign, 400, _("Your gift could not be sent. Please try again."))
    if not form.validate():
        return _render(form, campaign, 400)
    if not _email_allowed(form.email.data or ""):
        return render_template("errors/error.html", status=429, reason=None), 429
    gift = checkout_service.GiftRequest(
        email=form.email.data or "",
        name=form.name.data or "",
        language=current_language(),
        frequency=form.chosen_frequency,
        gift_minor=form.gift_minor,
        fee_minor=form.fee_minor,
        currency=str(form.currency.data),
        checkout_token=str(form.checkout_token.data),
        campaign=campaign,
        is_anonymous=bool(form.anonymous.data),
        wants_newsletter=bool(form.subscribe.data),
        source=form.source.data or "",
        utm=form.utm(),
    )
    try:
        url = checkout_service.start_checkout(
            session,
            get_gateway(),
            gift,
            config=donation_config(current_app.config),
            publication=get_site_settings(session).publication_name,
            now=utcnow(),
        )
    except StripeUnavailable:
        current_app.logger.exception("Stripe Checkout could not be opened")
        session.rollback()
        return _render(
            form,
            campaign,
            503,
            _(
                "The payment service cannot be reached right now. Nothing was charged: "
                "please try again in a few minutes."
            ),
        )
    return redirect(url, code=303)


@public_route(bp, "/donate", methods=["GET", "POST"])
@_checkout_limit
def donate() -> Any:
    """The donation page; a valid POST answers 303 to Stripe Checkout."""
    return _donate(None)


@public_route(bp, "/donate/<slug>", methods=["GET", "POST"])
@_checkout_limit
def campaign_page(slug: str) -> Any:
    """A campaign's donation page with its goal and progress."""
    campaign = active_campaign(get_session(), slug)
    if campaign is None:
        abort(404)
    return _donate(campaign)


@public_route(bp, "/donate/thanks")
def thanks() -> Any:
    """The gift as confirmed by the webhook, or by asking Stripe when it has not come yet."""
    checkout_id = request.args.get("session_id", "")
    if not checkout_id.startswith("cs_") or len(checkout_id) > 255:
        abort(404)
    session = get_session()
    donation = session.query(Donation).filter_by(stripe_checkout_session_id=checkout_id).first()
    if donation is None:
        abort(404)
    if donation.status != DonationStatus.PAID:
        _confirm_from_stripe(donation, checkout_id)
    session.refresh(donation)
    confirmed = donation.status == DonationStatus.PAID
    body = render_template(
        "donations/thanks.html",
        donation=donation,
        confirmed=confirmed,
        language=current_language(),
    )
    return body, 200, ({"Refresh": "5"} if not confirmed else {})


def _confirm_from_stripe(donation: Donation, checkout_id: str) -> None:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    gateway = app.extensions.get("stripe_gateway")
    if gateway is None:
        return
    try:
        checkout = gateway.retrieve_checkout_session(checkout_id)
    except StripeUnavailable:
        return
    session = get_session()
    books = books_context(app, utcnow())
    try:
        # The webhook may be applying the same checkout right now: end this request's
        # read, then decide as a writer on the row as committed (one receipt either way).
        session.rollback()
        begin_writing(session)
        apply_checkout_session(session, checkout, books)
        apply_waiting(session, books)
        session.commit()
    except Exception:  # the webhook will apply it; the page just says "confirming"
        session.rollback()
        app.logger.exception("thank-you page could not record checkout %s", checkout_id)
        return
    if books.queued:
        deliver_now(get_database(), get_mailer(), books.queued, utcnow())
