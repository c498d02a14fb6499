"""The reports feature's public face: the dashboard, the report tables, the exchange rates.

Reports only read (the one thing they write is a rate staff set). Every function takes the
`Session`, the time `now` where it matters, and the `Rates` that turn every currency into
the base one; `dashboard`, `tables`, `metrics`, `rates` and `summary` stay private.
"""

from __future__ import annotations

from webapp.reports.dashboard import Dashboard, Figure, LastIssue, build_dashboard
from webapp.reports.metrics import ReportFilter, add_months, month_start, month_starts
from webapp.reports.rates import (
    Converted,
    RateError,
    Rates,
    get_report_settings,
    load_rates,
    parse_rate,
    rate_text,
    set_rate,
)
from webapp.reports.tables import REPORTS, Chart, Column, Query, Report, Table, find_report

__all__ = [
    "REPORTS",
    "Chart",
    "Column",
    "Converted",
    "Dashboard",
    "Figure",
    "LastIssue",
    "Query",
    "RateError",
    "Rates",
    "Report",
    "ReportFilter",
    "Table",
    "add_months",
    "build_dashboard",
    "find_report",
    "get_report_settings",
    "load_rates",
    "month_start",
    "month_starts",
    "parse_rate",
    "rate_text",
    "set_rate",
]
