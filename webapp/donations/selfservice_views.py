"""Donor self-service pages: ask for a link (`/donate/manage`), then manage gifts behind it."""

from __future__ import annotations

import secrets
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import HiddenField, IntegerField, StringField
from wtforms.validators import DataRequired, Length

from webapp.core.clock import utcnow
from webapp.core.forms import strip_text, valid_email
from webapp.core.limits import limiter
from webapp.core.money import InvalidAmount, format_money, to_minor
from webapp.core.tokens import TokenError
from webapp.db import get_database, get_session
from webapp.donations import selfservice, statements
from webapp.donations.access import donor_from_token
from webapp.donations.gateway import get_gateway
from webapp.donations.models import Donation, Donor, Plan, PlanStatus
from webapp.donations.services import DonationConfig, donation_config, get_donation_settings
from webapp.i18n import current_language, public_route
from webapp.outbox.services import deliver_now, get_mailer

bp = Blueprint("donor", __name__, template_folder="templates")


class AccessForm(FlaskForm):
    """Ask for the self-service link."""

    email = StringField(
        _l("Email address you gave with"),
        filters=[strip_text],
        validators=[
            DataRequired(_l("Please enter your email address.")),
            Length(max=254, message=_l("That address is too long.")),
            valid_email,
        ],
    )
    website = StringField(_l("Leave this field empty"))


class AmountForm(FlaskForm):
    """A plan's new amount. `change_token` is new on every page view: the same submission
    sent twice is one change, another submission is another."""

    amount = StringField(_l("New amount"), filters=[strip_text])
    change_token = HiddenField(filters=[strip_text])


class YearForm(FlaskForm):
    """Which year's statement to email."""

    year = IntegerField(_l("Year"))


def _config() -> DonationConfig:
    return donation_config(current_app.config)


def _link_limit() -> str:
    return str(current_app.config["DONOR_LINK_RATE_LIMIT"])


def _deliver(message_ids: list[int]) -> None:
    if message_ids:
        deliver_now(get_database(), get_mailer(), message_ids, utcnow())


@public_route(bp, "/donate/manage", methods=["GET", "POST"])
@limiter.limit(_link_limit, methods=["POST"])
def request_access() -> Any:
    """The same answer whether the address gave or not (no enumeration)."""
    form = AccessForm()
    if request.method == "POST":
        if (form.website.data or "").strip():
            return render_template("donations/manage_sent.html")
        if not form.validate_on_submit():
            return render_template("donations/manage_request.html", form=form), 400
        session = get_session()
        queued = selfservice.request_donor_access(
            session,
            get_mailer(),
            form.email.data or "",
            language=current_language(),
            config=_config(),
            now=utcnow(),
        )
        session.commit()
        _deliver(queued)
        return render_template("donations/manage_sent.html")
    return render_template("donations/manage_request.html", form=form)


def _donor_or_problem(token: str) -> Donor | Any:
    config = _config()
    try:
        return donor_from_token(
            get_session(),
            token,
            secret=config.secret,
            max_age=config.donor_link_max_age,
            now=utcnow(),
        )
    except TokenError as exc:
        status = 410 if exc.expired else 400
        page = render_template("donations/manage_request.html", form=AccessForm(), problem=status)
        return page, status


def _plan_of(donor: Donor, plan_id: int) -> Plan:
    plan = get_session().get(Plan, plan_id)
    if plan is None or plan.donor_id != donor.id:
        abort(404)
    return plan


@public_route(bp, "/donate/manage/<token>")
def manage(token: str) -> Any:
    """The donor's gifts and plans, with what can be done about them."""
    donor = _donor_or_problem(token)
    if not isinstance(donor, Donor):
        return donor
    session = get_session()
    gifts = session.scalars(
        select(Donation)
        .where(Donation.donor_id == donor.id, Donation.counts_as_paid)
        .order_by(Donation.paid_at.desc(), Donation.id.desc())
    ).all()
    plans = session.scalars(
        select(Plan).where(Plan.donor_id == donor.id).order_by(Plan.id.desc())
    ).all()
    year = utcnow().year
    return (
        render_template(
            "donations/manage.html",
            donor=donor,
            gifts=gifts,
            plans=plans,
            token=token,
            language=current_language(),
            years=[year, year - 1],
            form=FlaskForm(),
            settings=get_donation_settings(session),
            PlanStatus=PlanStatus,
            change_token=lambda: secrets.token_urlsafe(24),
        ),
        200,
        {"Cache-Control": "no-store"},
    )


@public_route(bp, "/donate/manage/<token>/plans/<int:plan_id>/amount", methods=["POST"])
def change_amount(token: str, plan_id: int) -> Any:
    """Change a plan's amount from the next payment on."""
    donor = _donor_or_problem(token)
    if not isinstance(donor, Donor):
        return donor
    plan = _plan_of(donor, plan_id)
    form = AmountForm()
    session = get_session()
    settings = get_donation_settings(session)
    language = current_language()
    try:
        amount = (
            to_minor(form.amount.data or "", plan.currency, language)
            if form.validate_on_submit()
            else None
        )
    except InvalidAmount:
        amount = None
    if amount is None or not settings.minimum_minor <= amount <= settings.maximum_minor:
        flash(
            _(
                "Please enter an amount between %(low)s and %(high)s.",
                low=format_money(settings.minimum_minor, plan.currency, language),
                high=format_money(settings.maximum_minor, plan.currency, language),
            ),
            "error",
        )
        return redirect(url_for(".manage", token=token), code=303)
    # A form without its token (a script) still works; it just is not deduplicated.
    request_token = (form.change_token.data or "")[:64] or secrets.token_urlsafe(16)
    try:
        changed = selfservice.change_plan_amount(
            session,
            get_gateway(),
            get_mailer(),
            plan.id,
            amount,
            request_token=request_token,
            config=_config(),
            now=utcnow(),
        )
    except selfservice.PlanChangeError:
        session.rollback()
        flash(
            _(
                "Your gift could not be changed right now. Nothing was changed; please try "
                "again later."
            ),
            "error",
        )
        return redirect(url_for(".manage", token=token), code=303)
    _deliver_pending_for(donor)
    if changed:
        flash(
            _(
                "Done: from your next payment on, your gift is %(amount)s.",
                amount=format_money(amount, plan.currency, language),
            ),
            "success",
        )
    return redirect(url_for(".manage", token=token), code=303)


@public_route(bp, "/donate/manage/<token>/plans/<int:plan_id>/cancel", methods=["POST"])
def cancel(token: str, plan_id: int) -> Any:
    """Stop a regular gift now."""
    donor = _donor_or_problem(token)
    if not isinstance(donor, Donor):
        return donor
    plan = _plan_of(donor, plan_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    session = get_session()
    try:
        selfservice.cancel_plan(
            session, get_gateway(), get_mailer(), plan.id, config=_config(), now=utcnow()
        )
    except selfservice.PlanChangeError:
        session.rollback()
        flash(_("Your gift could not be cancelled right now. Please try again later."), "error")
        return redirect(url_for(".manage", token=token), code=303)
    _deliver_pending_for(donor)
    flash(_("Your regular gift is cancelled. Thank you for your support."), "success")
    return redirect(url_for(".manage", token=token), code=303)


@public_route(bp, "/donate/manage/<token>/portal", methods=["POST"])
def portal(token: str) -> Any:
    """Stripe's billing portal, to update the card."""
    donor = _donor_or_problem(token)
    if not isinstance(donor, Donor):
        return donor
    if not FlaskForm().validate_on_submit():
        abort(400)
    back = f"{_config().base_url}{url_for('.manage', token=token)}"
    try:
        url = selfservice.billing_portal_url(get_gateway(), donor, back)
    except selfservice.PlanChangeError:
        flash(_("The card page cannot be opened right now. Please try again later."), "error")
        return redirect(url_for(".manage", token=token), code=303)
    return redirect(url, code=303)


@public_route(bp, "/donate/manage/<token>/statement", methods=["POST"])
def statement(token: str) -> Any:
    """Email the donor their statement of one year."""
    donor = _donor_or_problem(token)
    if not isinstance(donor, Donor):
        return donor
    form = YearForm()
    year = utcnow().year
    if not form.validate_on_submit() or form.year.data not in (year, year - 1):
        abort(400)
    session = get_session()
    asked = statements.request_statement(
        session, get_mailer(), donor, int(form.year.data), config=_config(), now=utcnow()
    )
    session.commit()
    if asked.outcome == "no_gifts":
        flash(_("There were no gifts in %(year)s.", year=form.year.data), "info")
    elif asked.outcome == "throttled":
        flash(
            _(
                "A statement was sent to %(email)s a few minutes ago: please look in your "
                "inbox (and the spam folder) before asking again.",
                email=donor.email,
            ),
            "info",
        )
    else:
        _deliver([asked.message_id] if asked.message_id else [])
        flash(_("Your statement is on its way to %(email)s.", email=donor.email), "success")
    return redirect(url_for(".manage", token=token), code=303)


def _deliver_pending_for(donor: Donor) -> None:
    from webapp.outbox.models import OutboxMessage, OutboxStatus

    ids = list(
        get_session().scalars(
            select(OutboxMessage.id).where(
                OutboxMessage.to_address == donor.email,
                OutboxMessage.status == OutboxStatus.PENDING,
            )
        )
    )
    _deliver(ids)
