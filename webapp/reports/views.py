"""Staff report pages: the supporter dashboard and the exchange rates behind its totals."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from babel.numbers import format_decimal, format_percent
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from webapp.core.clock import get_clock
from webapp.core.csv_out import Cell, CsvWriter, PlainNumber
from webapp.core.money import format_money, format_plain
from webapp.db import get_session
from webapp.donations.models import Campaign
from webapp.i18n import current_language
from webapp.reports.services import (
    REPORTS,
    Column,
    Figure,
    Query,
    RateError,
    Report,
    ReportFilter,
    Table,
    add_months,
    build_dashboard,
    find_report,
    load_rates,
    month_start,
    month_starts,
    parse_rate,
    rate_text,
    set_rate,
)
from webapp.staff.services import Permission, audit_request, current_staff, requires

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
        reports=_visible_reports(),
        report=None,
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
            reports=_visible_reports(),
            report=None,
            currencies=[c for c in currencies if c != rates.base],
            errors=errors or {},
            can_edit=_can_edit(),
            rate_text=rate_text,
        ),
        status,
    )


def _can_edit() -> bool:
    from webapp.staff.services import role_allows

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


# --- Reports ---------------------------------------------------------------------------------


def _month_arg(name: str, default: datetime) -> tuple[datetime, str | None]:
    """A "YYYY-MM" query argument as the first of that month, or the default and an error."""
    text = (request.values.get(name) or "").strip()[:7]
    if not text:
        return default, None
    try:
        year, month = (int(part) for part in text.split("-"))
        return datetime(year, month, 1, tzinfo=UTC), None
    except ValueError:
        return default, _("Use the form YYYY-MM, e.g. 2026-01.")


def _query() -> tuple[Query, dict[str, str]]:
    now = get_clock().now()
    this_month = month_start(now)
    errors: dict[str, str] = {}
    first, error = _month_arg("from", add_months(this_month, -11))
    if error:
        errors["from"] = error
    last, error = _month_arg("to", this_month)
    if error:
        errors["to"] = error
    if first > last:
        errors["from"] = _("The first month comes after the last one.")
        first = last
    if len(month_starts(first, last)) > MAX_MONTHS:
        errors["from"] = _("Choose at most %(n)d months.", n=MAX_MONTHS)
        first = add_months(last, -(MAX_MONTHS - 1))
    campaign = (request.values.get("campaign") or "").strip()
    currency = (request.values.get("currency") or "").strip().upper()[:3]
    flt = ReportFilter(
        currency=currency if currency.isalpha() else "",
        campaign_id=int(campaign) if campaign.isdigit() and len(campaign) < 10 else None,
        source=(request.values.get("source") or "").strip()[:300],
        language=(request.values.get("language") or "").strip()[:8],
    )
    return Query(first, last, flt, now), errors


#: A report covers at most this many months (ten years).
MAX_MONTHS = 120


def format_cell(column: Column, value: Any, base: str, language: str) -> str:
    """One cell as the page shows it."""
    if value is None:
        return "—"
    if column.kind == "money":
        return format_money(int(value), base, language)
    if column.kind == "share":
        return str(format_percent(value, format="#,##0.0%", locale=language))
    if column.kind == "count":
        return str(format_decimal(value, locale=language))
    return str(value)


def report_chart(table: Table) -> str | None:
    """The data attribute of a report's chart."""
    if table.chart is None or not table.rows:
        return None
    labels_key = table.columns[0].key
    by_key = {column.key: column for column in table.columns}
    return json.dumps(
        {
            "type": "bar" if table.chart.type in ("bar", "stacked") else "line",
            "stacked": table.chart.type == "stacked",
            "labels": [str(row[labels_key]) for row in table.rows],
            "datasets": [
                {
                    "label": str(by_key[key].label),
                    # Money goes to the chart in major units.
                    "data": [
                        (row[key] / 100 if by_key[key].kind == "money" else row[key])
                        if row[key] is not None
                        else None
                        for row in table.rows
                    ],
                }
                for key in table.chart.columns
            ],
            "percent": all(by_key[key].kind == "share" for key in table.chart.columns),
        }
    )


def _may_see(report: Report, table: Table | None = None) -> bool:
    """True when the signed-in role may see this report, page and CSV alike: what a role may
    not download it may not see either (rows that name people need `REPORTS_PERSONAL`)."""
    from webapp.staff.services import role_allows

    staff = current_staff()
    if staff is None:
        return False
    personal = report.personal or (table is not None and table.personal)
    return not personal or role_allows(staff.role, Permission.REPORTS_PERSONAL)


def _visible_reports() -> list[Report]:
    """The reports menu of the signed-in role: no links to pages it would be refused."""
    return [report for report in REPORTS if _may_see(report)]


@bp.get("/<slug>")
@requires(Permission.REPORTS)
def report_page(slug: str) -> Any:
    report = find_report(slug)
    if report is None:
        abort(404)
    if not _may_see(report):
        abort(403)
    session = get_session()
    query, errors = _query()
    rates = load_rates(session)
    table = report.build(session, query, rates)
    if not _may_see(report, table):
        abort(403)
    return (
        render_template(
            "reports/report.html",
            report=report,
            reports=_visible_reports(),
            table=table,
            query=query,
            errors=errors,
            rates=rates,
            chart=report_chart(table),
            format_cell=format_cell,
            language=current_language(),
            campaigns=list(session.scalars(select(Campaign).order_by(Campaign.slug))),
            reports_menu=True,
            languages=current_app.config["LANGUAGES"],
        ),
        400 if errors else 200,
    )


@bp.post("/<slug>.csv")
@requires(Permission.REPORTS)
def report_csv(slug: str) -> Any:
    report = find_report(slug)
    if report is None:
        abort(404)
    if not _may_see(report):
        abort(403)
    session = get_session()
    query, errors = _query()
    if errors:
        abort(400)
    table = report.build(session, query, load_rates(session))
    if not _may_see(report, table):
        abort(403)
    audit_request(
        session,
        action="reports.csv",
        target_type="report",
        target_id=slug,
        details={
            "rows": len(table.rows),
            "from": f"{query.first:%Y-%m}",
            "to": f"{query.last:%Y-%m}",
        },
    )
    session.commit()
    buffer = io.StringIO()
    writer = CsvWriter(buffer, bom=True)
    base = load_rates(session).base
    writer.writerow([_csv_header(column, base) for column in table.columns])
    for row in table.rows:
        writer.writerow([_csv_value(column, row[column.key], base) for column in table.columns])
    filename = f"readership-{slug}-{query.first:%Y-%m}-{query.last:%Y-%m}.csv"
    return Response(
        buffer.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _csv_header(column: Column, base: str) -> str:
    return f"{column.key}_{base.lower()}" if column.kind == "money" else column.key


def _csv_value(column: Column, value: Any, base: str) -> Cell:
    # Spreadsheet programs read plain numbers: money in major units, shares as fractions.
    # Numbers stay numbers; text (names, sources) is formula-escaped by the CSV writer.
    if value is None:
        return ""
    if column.kind == "money":
        return PlainNumber(format_plain(int(value), base))
    if column.kind == "share":
        return Decimal(f"{value:.4f}")
    if isinstance(value, int | float | Decimal) and column.kind != "text":
        return value
    return str(value)
