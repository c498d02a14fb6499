"""Wires the staff feature into an app: session loader, fail-closed check, views, nav, CLI."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask
from flask_babel import lazy_gettext as _l

from webapp.core.clock import as_utc
from webapp.staff import auth, nav
from webapp.staff.roles import Permission


def init_app(app: Flask) -> None:
    """Register the staff blueprints, hooks, navigation items and `readership staff`."""
    from webapp.site import staff_views as settings_views
    from webapp.staff import audit_views, cli, users_views, views
    from webapp.staff.services import configure_password_hasher

    # Not read from the environment: production keeps argon2's defaults; tests may lower them.
    configure_password_hasher(
        time_cost=app.config.get("ARGON2_TIME_COST"),
        memory_cost=app.config.get("ARGON2_MEMORY_COST"),
    )
    auth.init_app(app)
    nav.init_app(app)
    app.add_template_filter(format_utc, "utc")
    app.register_blueprint(views.bp)
    app.register_blueprint(users_views.bp)
    app.register_blueprint(audit_views.bp)
    app.register_blueprint(settings_views.bp)
    nav.register_nav_item("staff.dashboard", _l("Dashboard"), Permission.DASHBOARD, order=0)
    nav.register_nav_item("staff_users.index", _l("Staff"), Permission.STAFF, order=900)
    nav.register_nav_item("staff_audit.index", _l("Audit log"), Permission.AUDIT, order=910)
    nav.register_nav_item("staff_settings.edit", _l("Settings"), Permission.SETTINGS, order=920)
    app.cli.add_command(cli.staff_cli)


def format_utc(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored time shown in UTC whatever the database's session time zone ("" for None)."""
    if value is None:
        return ""
    return as_utc(value).astimezone(UTC).strftime(fmt)
