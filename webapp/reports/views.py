"""Staff report pages: the supporter dashboard and the exchange rates behind its totals."""

from __future__ import annotations

import json
from typing import Any

from babel.numbers import format_decimal, format_percent
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from webapp.core.clock import get_clock
from webapp.core.money import format_money
from webapp.db import get_session
from webapp.i18n import current_language
from webapp.reports.dashboard import Figure, build_dashboard
from webapp.reports.rates import RateError, load_rates, parse_rate, rate_text, set_rate
from webapp.staff.audit import audit_request
from webapp.staff.auth import current_staff, requires
from webapp.staff.roles import Permission

bp = Blueprint(
    "reports",
    __name__,
    url_prefix="/staff/reports",
    template_folder="templates",
)

#: Tile titles and what each means (the glossary in the README says the same).
FIGURE_TEXT: dict[str, tuple[Any, Any]] = {
    "active_donors": (
        _l("Active recurring donors"),
        _l("Donors with a monthly or yearly plan that has started and is not cancelled."),
    ),
    "mrr": (
        _l("Monthly recurring revenue"),
        _l("The monthly amount of every active plan; yearly plans count a twelfth."),
    ),
    "one_time_revenue": (
        _l("One-time revenue this month"),
        _l("Single gifts paid this month, online and offline, less refunds and disputes."),
    ),
    "plans_started": (_l("New plans this month"), _l("Plans whose first payment went through.")),
    "plans_cancelled": (
        _l("Cancelled plans this month"),
        _l("Plans that ended this month, by the donor, staff or failed payments."),
    ),
    "plans_failed": (
        _l("Failed renewals this month"),
        _l("Plans with a failed renewal this month, whether or not it recovered."),
    ),
    "churn": (
        _l("Churn this month"),
        _l("Plans active on the 1st that were cancelled during the month, as a share of them."),
    ),
    "subscribers": (
        _l("Confirmed subscribers"),
        _l("Subscribers who confirmed and are on the list."),
    ),
    "new_subscribers": (_l("New subscribers this week"), _l("Confirmed in the last 7 days.")),
    "unsubscribed": (_l("Unsubscribed this week"), _l("Left the list in the last 7 days.")),
}


def format_figure(figure: Figure, value: float | None, base: str, language: str) -> str:
    """A figure's value as text in the staff member's language."""
    if value is None:
        return "—"
    if figure.kind == "money":
        return format_money(int(value), base, language)
    if figure.kind == "percent":
        return str(format_percent(value, format="#,##0.0%", locale=language))
    return str(format_decimal(value, locale=language))


def chart_data(figure: Figure, label: Any) -> str:
    """The JSON a canvas carries for `static/reports/charts.js` (a data attribute, so the
    Content-Security-Policy needs no inline script)."""
    return json.dumps(
        {
            "type": "line",
            "labels": figure.trend_labels,
            "datasets": [{"label": str(label), "data": figure.trend}],
            "percent": figure.kind == "percent",
        }
    )


@bp.get("/")
@requires(Permission.REPORTS)
def dashboard() -> Any:
    return render_dashboard()


def render_dashboard() -> Any:
    """The dashboard page (also the staff start page for roles that see reports)."""
    session = get_session()
    rates = load_rates(session)
    board = build_dashboard(session, get_clock().now(), rates)
    return render_template(
        "reports/dashboard.html",
        board=board,
        rates=rates,
        texts=FIGURE_TEXT,
        format_figure=format_figure,
        chart_data=chart_data,
        language=current_language(),
        zip=zip,
    )


@bp.get("/rates")
@requires(Permission.REPORTS)
def rates_page() -> Any:
    session = get_session()
    return _render_rates(session)


def _render_rates(session: Any, errors: dict[str, str] | None = None, status: int = 200) -> Any:
    from webapp.donations.services import get_donation_settings

    rates = load_rates(session)
    currencies = sorted(set(get_donation_settings(session).currencies) | set(rates.per_unit))
    return (
        render_template(
            "reports/rates.html",
            rates=rates,
            currencies=[c for c in currencies if c != rates.base],
            errors=errors or {},
            can_edit=_can_edit(),
            rate_text=rate_text,
        ),
        status,
    )


def _can_edit() -> bool:
    from webapp.staff.roles import role_allows

    staff = current_staff()
    return staff is not None and role_allows(staff.role, Permission.DONATIONS)


@bp.post("/rates")
@requires(Permission.DONATIONS)
def save_rates() -> Any:
    from flask_wtf.csrf import validate_csrf
    from wtforms import ValidationError

    session = get_session()
    try:
        validate_csrf(request.form.get("csrf_token", ""))
    except ValidationError:
        return _render_rates(session, {"_form": _("This form has expired; try again.")}, 400)
    rates = load_rates(session)
    errors: dict[str, str] = {}
    parsed = {}
    for key, text in request.form.items():
        if not key.startswith("rate_") or not text.strip():
            continue
        currency = key[5:].upper()
        if len(currency) != 3 or not currency.isalpha() or currency == rates.base:
            errors[key] = _("Unknown currency.")
            continue
        try:
            parsed[currency] = parse_rate(text[:40])
        except RateError:
            errors[key] = _("Enter a positive number, e.g. 0.92.")
    if errors:
        return _render_rates(session, errors, 400)
    staff = current_staff()
    now = get_clock().now()
    changed = {}
    for currency, rate in parsed.items():
        if rates.per_unit.get(currency) != rate:
            set_rate(session, currency, rate, now=now, staff_id=staff.id if staff else None)
            changed[currency] = str(rate)
    if changed:
        audit_request(session, action="reports.rates", details={"rates": changed})
        session.commit()
        flash(_("Exchange rates saved."), "success")
    return redirect(url_for(".rates_page"))
