"""Staff donation pages (fundraiser and admin): the list with totals and CSV, a donor's page,
offline gifts, refunds seen, campaigns and the donation settings. Every change and every
CSV download is written to the audit log."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time
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
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from webapp.core.clock import utcnow
from webapp.core.money import format_plain
from webapp.core.net import client_ip, is_safe_redirect
from webapp.db import get_database, get_session
from webapp.donations import offline, queries
from webapp.donations.campaigns import campaign_progress
from webapp.donations.models import (
    Campaign,
    Donation,
    DonationSettings,
    Donor,
    OfflineMethod,
)
from webapp.donations.services import donation_config, get_donation_settings
from webapp.donations.staff_forms import (
    CampaignForm,
    DonationFilterForm,
    DonationSettingsForm,
    OfflineGiftForm,
    SettingsValues,
    frequency_labels,
    kind_labels,
    method_labels,
    status_labels,
)
from webapp.outbox.services import deliver_now, erase_local_mailbox_copies, get_mailer
from webapp.staff.services import Permission, audit_request, current_staff, requires, role_allows
from webapp.subscribers.services import find_subscriber

bp = Blueprint(
    "donations_staff", __name__, url_prefix="/staff/donations", template_folder="templates"
)

FREQUENCIES = ("one_time", "month", "year")


@bp.context_processor
def _labels() -> dict[str, Any]:
    return {
        "status_label": status_labels(),
        "kind_label_staff": kind_labels(),
        "frequency_label": frequency_labels(),
        "method_label": method_labels(),
    }


# --- The list and its CSV -----------------------------------------------------------------


def _filter_form(formdata: Any) -> DonationFilterForm:
    session = get_session()
    return DonationFilterForm(
        formdata,
        currencies=get_donation_settings(session).currencies,
        campaigns=queries.campaigns(session),
    )


def _filter_from(form: DonationFilterForm) -> queries.DonationFilter:
    campaign = form.campaign.data or ""
    return queries.DonationFilter(
        q=form.q.data or "",
        status=form.status.data or "",
        kind=form.kind.data or "",
        frequency=form.frequency.data or "",
        currency=form.currency.data or "",
        campaign_id=int(campaign) if campaign.isdigit() else None,
        date_from=form.date_from.data,
        date_to=form.date_to.data,
        unseen_refunds=bool(form.unseen.data),
    )


def _page_number() -> int:
    value = request.args.get("page", "1")
    return int(value) if value.isdigit() and len(value) < 7 else 1


@bp.get("/")
@requires(Permission.DONATIONS)
def index() -> Any:
    """Donations, newest first, with filters, search, totals and paging."""
    form = _filter_form(request.args)
    if not form.validate():
        return render_template("donations/staff/index.html", form=form, page=None, filters={}), 400
    page = queries.list_donations(get_session(), _filter_from(form), page=_page_number())
    return render_template(
        "donations/staff/index.html", form=form, page=page, filters=form.active_filters()
    )


@bp.get("/events")
@requires(Permission.DONATIONS)
def events() -> Any:
    """The Stripe events received and what each did; parked ones wait for their object."""
    parked_only = request.args.get("parked") == "y"
    before = (request.args.get("before") or "")[:255] or None
    page = queries.list_stripe_events(get_session(), parked_only=parked_only, before=before)
    return render_template("donations/staff/events.html", page=page, parked_only=parked_only)


@bp.post("/export.csv")
@requires(Permission.DONATIONS)
def export() -> Any:
    """The filtered list as CSV, streamed (audit-logged; a POST because it writes the audit
    row and sends personal data, so it needs the CSRF token)."""
    form = _filter_form(request.form)
    if not form.validate():
        abort(400)
    flt = _filter_from(form)
    session = get_session()
    rows = queries.count_donations(session, flt)
    audit_request(
        session,
        action="donations.export",
        target_type="donation",
        details={"filters": form.active_filters(), "rows": rows},
    )
    session.commit()
    database = get_database()

    def generate() -> Iterator[str]:
        # Its own session: the request's one is closed once the view returns.
        with database.session() as reading:
            yield from queries.donations_csv(reading, flt)

    stamp = utcnow().strftime("%Y-%m-%d-%H%M")
    return Response(
        stream_with_context(generate()),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="donations-{stamp}.csv"',
            "Cache-Control": "no-store",
        },
    )


# --- One donor ----------------------------------------------------------------------------


@bp.get("/donors/<int:donor_id>")
@requires(Permission.DONATIONS)
def donor(donor_id: int) -> Any:
    """One donor: gifts, plans, newsletter status, emails sent, totals."""
    session = get_session()
    overview = queries.donor_overview(session, donor_id)
    if overview is None:
        abort(404)
    return render_template(
        "donations/staff/donor.html",
        view=overview,
        donor=overview.donor,
        subscriber=find_subscriber(session, overview.donor.email),
        can_erase=role_allows(current_staff().role, Permission.SUBSCRIBERS_ERASE),  # type: ignore[union-attr]
    )


@bp.route("/donors/<int:donor_id>/erase", methods=["GET", "POST"])
@requires(Permission.SUBSCRIBERS_ERASE)
def erase_donor(donor_id: int) -> Any:
    """Erase a donor everywhere (subscribed or not), after the address is typed again."""
    from webapp.core.forms import EraseForm
    from webapp.subscribers.services import erase_person
    from webapp.subscribers.signals import ErasureBlocked

    session = get_session()
    person = session.get(Donor, donor_id)
    if person is None:
        abort(404)
    if person.email.endswith("@erased.invalid"):
        flash(_("This person was erased already."), "ok")
        return redirect(url_for(".donor", donor_id=donor_id), code=303)
    form = EraseForm(expected_email=person.email)
    form.confirm_email.label.text = _("Type the donor's email address to confirm")
    page = "donations/staff/erase.html"
    if request.method != "POST":
        return render_template(page, form=form, donor=person)
    if not form.validate_on_submit():
        return render_template(page, form=form, donor=person), 422
    address = person.email
    try:
        fingerprint = erase_person(
            session,
            address,
            staff=current_staff(),
            secret=current_app.config["SECRET_KEY"],
            now=utcnow(),
            ip=client_ip(),
        )
    except ErasureBlocked as blocked:
        session.rollback()
        return render_template(page, form=form, donor=person, blocked=str(blocked)), 409
    session.commit()
    erase_local_mailbox_copies(get_mailer(), address)
    flash(
        _("The person was erased. Reference kept in the audit log: %(ref)s", ref=fingerprint), "ok"
    )
    return redirect(url_for(".donor", donor_id=donor_id), code=303)


# --- Offline gifts ------------------------------------------------------------------------


@bp.route("/offline/new", methods=["GET", "POST"])
@requires(Permission.DONATIONS)
def offline_new() -> Any:
    """Record a bank transfer, cash, cheque or other gift."""
    session = get_session()
    form = OfflineGiftForm(
        currencies=get_donation_settings(session).currencies,
        campaigns=queries.campaigns(session),
        languages=current_app.config["LANGUAGES"],
        today=utcnow().date(),
    )
    if request.method == "GET":
        form.received_on.data = form.today
        form.email.data = request.args.get("email", "")[:320]
        return render_template("donations/staff/offline.html", form=form)
    if not form.validate_on_submit():
        return render_template("donations/staff/offline.html", form=form), 400
    gift = offline.OfflineGift(
        email=form.email.data or "",
        name=form.name.data or "",
        amount_minor=form.amount_minor,
        currency=str(form.currency.data),
        # Noon UTC: the day stays the same in every time zone staff are likely in.
        received_at=datetime.combine(form.received_on.data, time(12), UTC),
        method=OfflineMethod(form.method.data),
        note=form.note.data or "",
        campaign_id=form.campaign_id,
        source=form.source.data or "",
        language=str(form.language.data),
        send_receipt=bool(form.send_receipt.data),
    )
    donation, receipt = offline.record_offline_gift(
        session,
        get_mailer(),
        gift,
        staff=current_staff(),
        config=donation_config(current_app.config),
        ip=client_ip(),
        now=utcnow(),
    )
    session.commit()
    if receipt is not None:
        deliver_now(get_database(), get_mailer(), [receipt], utcnow())
    flash(_("Offline gift %(number)s recorded.", number=donation.receipt_number), "success")
    return redirect(url_for(".donor", donor_id=donation.donor_id), code=303)


# --- Refunds and disputes seen ------------------------------------------------------------


@bp.post("/<int:donation_id>/refund-seen")
@requires(Permission.DONATIONS)
def refund_seen(donation_id: int) -> Any:
    """Acknowledge a refund or dispute (it stops being flagged until the next one)."""
    session = get_session()
    donation = session.get(Donation, donation_id)
    if donation is None:
        abort(404)
    if (donation.refunded_minor or donation.disputed_minor) and donation.refund_seen_at is None:
        donation.refund_seen_at = utcnow()
        audit_request(
            session,
            action="donations.refund_seen",
            target_type="donation",
            target_id=donation.id,
            details={
                "refunded": donation.refunded_minor,
                "disputed": donation.disputed_minor,
                "currency": donation.currency,
            },
        )
        session.commit()
        flash(_("%(number)s marked as seen.", number=donation.receipt_number), "success")
    target = request.form.get("next", "")
    if is_safe_redirect(target) and target.startswith("/staff/donations"):
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


def _campaign_texts(languages: list[str], campaign: Campaign | None) -> dict[str, tuple[str, str]]:
    if request.method == "POST":
        return {
            lang: (
                request.form.get(f"title_{lang}", "").strip(),
                request.form.get(f"description_{lang}", "").strip(),
            )
            for lang in languages
        }
    if campaign is None:
        return {lang: ("", "") for lang in languages}
    return {
        lang: (campaign.titles.get(lang, ""), campaign.descriptions.get(lang, ""))
        for lang in languages
    }


def _campaign_snapshot(campaign: Campaign) -> dict[str, Any]:
    return {
        "slug": campaign.slug,
        "titles": dict(campaign.titles or {}),
        "descriptions": dict(campaign.descriptions or {}),
        "goal_minor": campaign.goal_minor,
        "currency": campaign.currency,
        "ends_at": campaign.ends_at.date().isoformat() if campaign.ends_at else None,
        "is_active": campaign.is_active,
    }


def _apply_campaign(
    session: Session,
    campaign: Campaign | None,
    form: CampaignForm,
    texts: dict[str, tuple[str, str]],
    now: datetime,
) -> tuple[Campaign, dict[str, Any]]:
    """Create or update the campaign from a valid form; returns it and the changed fields."""
    before = _campaign_snapshot(campaign) if campaign is not None else {}
    if campaign is None:
        campaign = Campaign(created_at=now)
        session.add(campaign)
    campaign.slug = str(form.slug.data)
    campaign.currency = str(form.currency.data)
    campaign.goal_minor = form.goal_minor
    campaign.ends_at = (
        datetime.combine(form.ends_on.data, time(23, 59, 59), UTC) if form.ends_on.data else None
    )
    campaign.is_active = bool(form.is_active.data)
    campaign.titles = {lang: title for lang, (title, _d) in texts.items() if title}
    campaign.descriptions = {lang: text for lang, (_t, text) in texts.items() if text}
    campaign.updated_at = now
    after = _campaign_snapshot(campaign)
    return campaign, {key: value for key, value in after.items() if before.get(key) != value}


def _save_campaign(campaign: Campaign | None) -> Any:
    session = get_session()
    form = CampaignForm(
        obj=campaign,
        languages=current_app.config["LANGUAGES"],
        currencies=get_donation_settings(session).currencies,
    )
    texts = _campaign_texts(form.languages, campaign)
    if request.method == "GET":
        if campaign is not None:
            form.goal.data = (
                format_plain(campaign.goal_minor, campaign.currency) if campaign.goal_minor else ""
            )
            form.ends_on.data = campaign.ends_at.date() if campaign.ends_at else None
        return _campaign_page(form, campaign, texts)
    valid = form.validate_on_submit()
    if form.slug.data and not form.slug.errors:
        clash = session.scalar(select(Campaign).where(Campaign.slug == form.slug.data))
        if clash is not None and clash is not campaign:
            form.slug.errors = [_("Another campaign uses this address.")]
            valid = False
    text_errors = _campaign_text_errors(form.languages, texts)
    if not valid or text_errors:
        return _campaign_page(form, campaign, texts, text_errors, 400)
    created = campaign is None
    campaign, changed = _apply_campaign(session, campaign, form, texts, utcnow())
    session.flush()
    audit_request(
        session,
        action="donations.campaign_created" if created else "donations.campaign_saved",
        target_type="campaign",
        target_id=campaign.id,
        details={"slug": campaign.slug, "changed": changed},
    )
    session.commit()
    flash(_("Campaign saved."), "success")
    return redirect(url_for(".campaigns"), code=303)


def _campaign_text_errors(
    languages: list[str], texts: dict[str, tuple[str, str]]
) -> dict[str, str]:
    errors: dict[str, str] = {}
    for lang, (title, description) in texts.items():
        if len(title) > 200:
            errors[f"title_{lang}"] = _("At most 200 characters.")
        if len(description) > 5000:
            errors[f"description_{lang}"] = _("At most 5000 characters.")
    # The first language is the fallback every other page language shows.
    if not texts[languages[0]][0]:
        errors[f"title_{languages[0]}"] = _("Give the campaign a title.")
    return errors


def _campaign_page(
    form: CampaignForm,
    campaign: Campaign | None,
    texts: dict[str, tuple[str, str]],
    text_errors: dict[str, str] | None = None,
    status: int = 200,
) -> Any:
    return render_template(
        "donations/staff/campaign_form.html",
        form=form,
        campaign=campaign,
        texts=texts,
        text_errors=text_errors or {},
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


def _settings_snapshot(current: DonationSettings) -> dict[str, Any]:
    return {
        "currencies": list(current.currencies),
        "default_currency": dict(current.default_currency),
        "presets": {code: dict(per) for code, per in current.presets.items()},
        "minimum_minor": current.minimum_minor,
        "maximum_minor": current.maximum_minor,
        "fee_percent_bp": current.fee_percent_bp,
        "fee_fixed_minor": current.fee_fixed_minor,
    }


def _apply_settings(
    current: DonationSettings, values: SettingsValues, now: datetime
) -> dict[str, Any]:
    """Store the new settings; returns {field: {"from": old, "to": new}} for what changed."""
    before = _settings_snapshot(current)
    current.currencies = values.currencies
    current.default_currency = values.default_currency
    current.presets = values.presets
    current.minimum_minor = values.minimum_minor
    current.maximum_minor = values.maximum_minor
    current.fee_percent_bp = values.fee_percent_bp
    current.fee_fixed_minor = values.fee_fixed_minor
    current.updated_at = now
    after = _settings_snapshot(current)
    return {
        key: {"from": before[key], "to": after[key]} for key in after if before[key] != after[key]
    }


@bp.route("/settings", methods=["GET", "POST"])
@requires(Permission.DONATIONS)
def settings() -> Any:
    """Currencies, presets, minimum and maximum, the card fee."""
    session = get_session()
    current = get_donation_settings(session)
    languages = list(current_app.config["LANGUAGES"])
    if request.method == "GET":
        raw = _settings_formdata(current, languages)
        form = DonationSettingsForm(raw, languages=languages, raw=raw)
        return _settings_page(form, current.currencies, raw)
    form = DonationSettingsForm(languages=languages, raw=request.form)
    if not form.validate_on_submit() or form.values is None:
        codes = form.currency_list() or current.currencies
        return _settings_page(form, codes, request.form, 400)
    changed = _apply_settings(current, form.values, utcnow())
    if changed:
        audit_request(
            session,
            action="donations.settings_saved",
            target_type="donation_settings",
            target_id=current.id,
            details={"changed": changed},
        )
    session.commit()
    flash(_("Donation settings saved.") if changed else _("Nothing changed."), "success")
    return redirect(url_for(".settings"), code=303)


def _settings_formdata(current: DonationSettings, languages: list[str]) -> MultiDict[str, str]:
    """The stored settings as the form's inputs (amounts in major units)."""
    base = current.currencies[0]
    data: dict[str, str] = {
        "currencies": " ".join(current.currencies),
        "minimum": format_plain(current.minimum_minor, base),
        "maximum": format_plain(current.maximum_minor, base),
        "fee_percent": format_plain(current.fee_percent_bp, "EUR"),  # basis points: 2 places
        "fee_fixed": format_plain(current.fee_fixed_minor, base),
    }
    for language in languages:
        data[f"default-{language}"] = current.default_currency.get(language, base)
    for code in current.currencies:
        for frequency in FREQUENCIES:
            data[f"preset-{code}-{frequency}"] = ", ".join(
                format_plain(value, code) for value in current.presets_for(code, frequency)
            )
    return MultiDict(data)


def _settings_page(
    form: DonationSettingsForm, codes: list[str], raw: Any, status: int = 200
) -> Any:
    return render_template(
        "donations/staff/settings.html",
        form=form,
        codes=codes,
        raw=raw,
        frequencies=FREQUENCIES,
    ), status
