"""Staff donation pages (fundraiser and admin): the list with totals and CSV, a donor's page,
offline gifts, refunds seen, campaigns and the donation settings. Every change and every
CSV download is written to the audit log."""

from __future__ import annotations

from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from sqlalchemy import select
from wtforms.validators import ValidationError

from webapp.core.clock import utcnow
from webapp.core.money import format_plain, to_minor
from webapp.core.net import client_ip
from webapp.db import get_database, get_session
from webapp.donations import offline, queries
from webapp.donations.campaigns import campaign_progress
from webapp.donations.models import Campaign, Donation, Donor, OfflineMethod, Plan
from webapp.donations.services import donation_config, get_donation_settings
from webapp.donations.staff_forms import (
    CampaignForm,
    DonationFilterForm,
    DonationSettingsForm,
    OfflineGiftForm,
)
from webapp.outbox.gateway import get_mailer
from webapp.outbox.models import OutboxMessage
from webapp.outbox.services import deliver_now
from webapp.staff.audit import audit_request
from webapp.staff.auth import current_staff, requires
from webapp.staff.roles import Permission
from webapp.subscribers.services import find_subscriber

bp = Blueprint(
    "donations_staff", __name__, url_prefix="/staff/donations", template_folder="templates"
)


def _filter_from(form: DonationFilterForm) -> queries.DonationFilter:
    campaign = form.campaign.data or ""
    return queries.DonationFilter(
        q=form.q.data or "", status=form.status.data or "", kind=form.kind.data or "",
        frequency=form.frequency.data or "", currency=form.currency.data or "",
        campaign_id=int(campaign) if campaign.isdigit() else None,
        date_from=form.date_from.data, date_to=form.date_to.data,
        unseen_refunds=bool(form.unseen.data),
    )


def _filter_form() -> DonationFilterForm:
    session = get_session()
    return DonationFilterForm(
        request.args, currencies=get_donation_settings(session).currencies,
        campaigns=queries.campaigns(session),
    )


@bp.get("/")
@requires(Permission.DONATIONS)
def index() -> Any:
    """Donations, newest first, with filters, search, totals and paging."""
    form = _filter_form()
    if not form.validate():
        return render_template("donations/staff/index.html", form=form, page=None), 400
    page_number = request.args.get("page", "1")
    page = queries.list_donations(
        get_session(), _filter_from(form),
        page=int(page_number) if page_number.isdigit() and len(page_number) < 7 else 1,
    )
    args = {k: v for k, v in request.args.items() if k != "page"}
    return render_template("donations/staff/index.html", form=form, page=page, args=args)


@bp.get("/export.csv")
@requires(Permission.DONATIONS)
def export() -> Any:
    """The filtered list as CSV (audit-logged)."""
    form = _filter_form()
    if not form.validate():
        abort(400)
    flt = _filter_from(form)
    session = get_session()
    audit_request(session, action="donations.export", target_type="donation",
                  details={k: v for k, v in request.args.items()})
    session.commit()
    database = get_database()

    def generate() -> Any:
        with database.session() as reading:
            yield from queries.donations_csv(reading, flt)

    stamp = utcnow().strftime("%Y%m%d-%H%M")
    return Response(
        stream_with_context(generate()), mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="donations-{stamp}.csv"'},
    )


@bp.get("/donors/<int:donor_id>")
@requires(Permission.DONATIONS)
def donor(donor_id: int) -> Any:
    """One donor: gifts, plans, newsletter status, emails sent, totals."""
    session = get_session()
    person = session.get(Donor, donor_id)
    if person is None:
        abort(404)
    gifts = session.scalars(
        select(Donation).where(Donation.donor_id == donor_id).order_by(Donation.id.desc())
    ).all()
    plans = session.scalars(
        select(Plan).where(Plan.donor_id == donor_id).order_by(Plan.id.desc())
    ).all()
    emails = session.scalars(
        select(OutboxMessage).where(OutboxMessage.to_address == person.email)
        .order_by(OutboxMessage.id.desc()).limit(50)
    ).all()
    totals: dict[str, int] = {}
    for gift in gifts:
        if gift.status == "paid":
            totals[gift.currency] = totals.get(gift.currency, 0) + gift.net_minor
    return render_template(
        "donations/staff/donor.html", donor=person, gifts=gifts, plans=plans, emails=emails,
        totals=totals, subscriber=find_subscriber(session, person.email),
    )


@bp.route("/offline/new", methods=["GET", "POST"])
@requires(Permission.DONATIONS)
def offline_new() -> Any:
    """Record a bank transfer, cash, cheque or other gift."""
    session = get_session()
    settings = get_donation_settings(session)
    form = OfflineGiftForm(
        currencies=settings.currencies, campaigns=queries.campaigns(session),
        languages=current_app.config["LANGUAGES"],
    )
    if request.method == "GET":
        form.received_on.data = utcnow().date()
        return render_template("donations/staff/offline.html", form=form)
    if not form.validate_on_submit():
        return render_template("donations/staff/offline.html", form=form), 400
    if form.received_on.data > utcnow().date():
        form.received_on.errors = [_("The date cannot be in the future.")]
        return render_template("donations/staff/offline.html", form=form), 400
    gift = offline.OfflineGift(
        email=form.email.data or "", name=form.name.data or "",
        amount_minor=form.amount_minor, currency=str(form.currency.data),
        received_at=datetime.combine(form.received_on.data, time(12), UTC),
        method=OfflineMethod(form.method.data), note=form.note.data or "",
        campaign_id=int(form.campaign.data) if (form.campaign.data or "").isdigit() else None,
        source=form.source.data or "", language=str(form.language.data),
        send_receipt=bool(form.send_receipt.data),
    )
    donation, receipt = offline.record_offline_gift(
        session, get_mailer(), gift, staff=current_staff(), config=donation_config(
            current_app.config), ip=client_ip(), now=utcnow(),
    )
    session.commit()
    if receipt is not None:
        deliver_now(get_database(), get_mailer(), [receipt], utcnow())
    flash(_("Offline gift %(number)s recorded.", number=donation.receipt_number), "success")
    return redirect(url_for(".donor", donor_id=donation.donor_id), code=303)


@bp.post("/<int:donation_id>/refund-seen")
@requires(Permission.DONATIONS)
def refund_seen(donation_id: int) -> Any:
    """Acknowledge a refund or dispute (it stops being flagged)."""
    session = get_session()
    donation = session.get(Donation, donation_id)
    if donation is None:
        abort(404)
    if donation.refunded_minor or donation.disputed_minor:
        donation.refund_seen_at = utcnow()
        audit_request(session, action="donations.refund_seen", target_type="donation",
                      target_id=donation.id)
        session.commit()
        flash(_("Marked as seen."), "success")
    target = request.form.get("next", "")
    if target.startswith("/staff/donations"):
        return redirect(target, code=303)
    return redirect(url_for(".index"), code=303)


# --- Campaigns ----------------------------------------------------------------------------


@bp.get("/campaigns")
@requires(Permission.DONATIONS)
def campaigns() -> Any:
    """Every campaign with what it raised."""
    session = get_session()
    rows = [(c, campaign_progress(session, c)) for c in queries.campaigns(session)]
    return render_template("donations/staff/campaigns.html", rows=rows)


def _campaign_form(campaign: Campaign | None) -> CampaignForm:
    session = get_session()
    form = CampaignForm(
        obj=campaign, languages=current_app.config["LANGUAGES"],
        currencies=get_donation_settings(session).currencies,
    )
    if campaign is not None and request.method == "GET":
        form.goal.data = (
            Decimal(format_plain(campaign.goal_minor, campaign.currency))
            if campaign.goal_minor else None
        )
        form.ends_on.data = campaign.ends_at.date() if campaign.ends_at else None
    return form


def _save_campaign(campaign: Campaign | None) -> Any:
    session = get_session()
    form = _campaign_form(campaign)
    texts = {
        lang: (request.form.get(f"title_{lang}", "").strip()[:200],
               request.form.get(f"description_{lang}", "").strip()[:2000])
        for lang in form.languages
    }
    if request.method == "POST":
        valid = form.validate_on_submit()
        clash = session.scalar(select(Campaign).where(Campaign.slug == form.slug.data))
        if clash is not None and clash is not campaign:
            form.slug.errors = [*form.slug.errors, _("Another campaign uses this address.")]
            valid = False
        if not texts[form.languages[0]][0]:
            flash(_("Give the campaign a title."), "error")
            valid = False
        if valid:
            now = utcnow()
            if campaign is None:
                campaign = Campaign(created_at=now)
                session.add(campaign)
            campaign.slug = str(form.slug.data)
            campaign.currency = str(form.currency.data)
            campaign.goal_minor = (
                to_minor(str(form.goal.data), campaign.currency) if form.goal.data else None
            )
            campaign.ends_at = (
                datetime.combine(form.ends_on.data, time(23, 59), UTC) if form.ends_on.data
                else None
            )
            campaign.is_active = bool(form.is_active.data)
            campaign.titles = {lang: t for lang, (t, _d) in texts.items() if t}
            campaign.descriptions = {lang: d for lang, (_t, d) in texts.items() if d}
            campaign.updated_at = now
            session.flush()
            audit_request(session, action="donations.campaign_saved", target_type="campaign",
                          target_id=campaign.id, details={"slug": campaign.slug})
            session.commit()
            flash(_("Campaign saved."), "success")
            return redirect(url_for(".campaigns"), code=303)
        status = 400
    else:
        status = 200
        if campaign is not None:
            texts = {lang: (campaign.titles.get(lang, ""), campaign.descriptions.get(lang, ""))
                     for lang in form.languages}
    return render_template(
        "donations/staff/campaign_form.html", form=form, campaign=campaign, texts=texts,
    ), status


@bp.route("/campaigns/new", methods=["GET", "POST"])
@requires(Permission.DONATIONS)
def campaign_new() -> Any:
    """Create a campaign."""
    return _save_campaign(None)


@bp.route("/campaigns/<int:campaign_id>", methods=["GET", "POST"])
@requires(Permission.DONATIONS)
def campaign_edit(campaign_id: int) -> Any:
    """Edit a campaign."""
    campaign = get_session().get(Campaign, campaign_id)
    if campaign is None:
        abort(404)
    return _save_campaign(campaign)


# --- Settings -----------------------------------------------------------------------------


@bp.route("/settings", methods=["GET", "POST"])
@requires(Permission.DONATIONS)
def settings() -> Any:
    """Currencies, presets, minimum and maximum, the card fee."""
    session = get_session()
    current = get_donation_settings(session)
    form = DonationSettingsForm()
    base = current.currencies[0]
    if request.method == "GET":
        form.currencies.data = " ".join(current.currencies)
        form.minimum.data = format_plain(current.minimum_minor, base)
        form.maximum.data = format_plain(current.maximum_minor, base)
        form.fee_percent.data = Decimal(current.fee_percent_bp) / 100
        form.fee_fixed.data = format_plain(current.fee_fixed_minor, base)
        return _settings_page(form, current, current.currencies)
    if not form.validate_on_submit():
        return _settings_page(form, current, current.currencies, 400)
    try:
        codes = form.currency_list()
        presets = form.parse_presets(request.form, codes)
        minimum = to_minor(form.minimum.data or "", codes[0])
        maximum = to_minor(form.maximum.data or "", codes[0])
        fixed = to_minor(form.fee_fixed.data or "", codes[0])
    except (ValidationError, ValueError) as exc:
        form.currencies.errors = [str(exc) or _("Please check the values.")]
        return _settings_page(form, current, current.currencies, 400)
    if not 0 < minimum <= maximum:
        form.minimum.errors = [_("The smallest gift must be above zero and below the largest.")]
        return _settings_page(form, current, codes, 400)
    defaults = {lang: request.form.get(f"default-{lang}", codes[0])
                for lang in current_app.config["LANGUAGES"]}
    current.currencies = codes
    current.presets = presets
    current.default_currency = {k: (v if v in codes else codes[0]) for k, v in defaults.items()}
    current.minimum_minor, current.maximum_minor = minimum, maximum
    current.fee_percent_bp = int(Decimal(str(form.fee_percent.data)) * 100)
    current.fee_fixed_minor = fixed
    current.updated_at = utcnow()
    audit_request(session, action="donations.settings_saved", target_type="donation_settings",
                  details={"currencies": codes, "minimum": minimum, "maximum": maximum,
                           "fee_percent_bp": current.fee_percent_bp, "fee_fixed": fixed})
    session.commit()
    flash(_("Donation settings saved."), "success")
    return redirect(url_for(".settings"), code=303)


def _settings_page(form: DonationSettingsForm, current: Any, codes: list[str],
                   status: int = 200) -> Any:
    values = {
        f"preset-{code}-{frequency}": request.form.get(f"preset-{code}-{frequency}") if
        request.method == "POST" else " ".join(
            format_plain(v, code) for v in current.presets.get(code, {}).get(frequency, [])
        )
        for code in codes for frequency in ("one_time", "month", "year")
    }
    return render_template(
        "donations/staff/settings.html", form=form, codes=codes, values=values,
        languages=current_app.config["LANGUAGES"], current=current,
    ), status
