"""Wires the reports feature into an app (called once from `webapp.features`)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask
from flask_babel import lazy_gettext as _l


def init_app(app: Flask) -> None:
    """Register the report pages, their assets, the nav item, and make the supporter
    dashboard the staff start page for roles that see reports."""
    from webapp.reports import views
    from webapp.staff.services import Permission, add_nav_item

    app.register_blueprint(views.bp)
    # Assets outside /staff: a stylesheet or script needs no login.
    app.register_blueprint(
        Blueprint(
            "reports_assets",
            __name__,
            static_folder="static",
            static_url_path="/reports/assets",
        )
    )
    add_nav_item(app, "reports.dashboard", _l("Reports"), Permission.REPORTS, 12)
    app.extensions["staff_dashboard"] = _start_page


def _start_page() -> Any:
    """The supporter dashboard for roles that see reports; None for the others."""
    from webapp.reports.views import render_dashboard
    from webapp.staff.services import Permission, current_staff, role_allows

    staff = current_staff()
    if staff is None or not role_allows(staff.role, Permission.REPORTS):
        return None
    return render_dashboard()
