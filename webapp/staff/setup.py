"""Wires the staff feature into an app: session loader, fail-closed check, views, nav, CLI."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from flask import Flask
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from webapp.core.clock import as_utc
from webapp.staff import auth, nav
from webapp.staff.roles import Permission

#: Where an app keeps the publication-name lookup (the TOTP issuer shown in authenticator apps).
PUBLICATION_NAME_KEY = "staff.publication_name"


def _no_publication_name(session: Session) -> str:
    return ""


def init_app(app: Flask, *, publication_name: Callable[[Session], str] | None = None) -> None:
    """Register the staff blueprints, hooks, navigation (the app's `Nav`, with the staff
    sections) and `readership staff`. `publication_name(session)` names the publication in
    authenticator apps (the composition root passes the site's; "" falls back to
    `TOTP_ISSUER`), so staff needs nothing from the features built on it."""
    from webapp.staff import audit_views, cli, users_views, views
    from webapp.staff.services import configure_password_hasher

    # Not read from the environment: production keeps argon2's defaults; tests may lower them.
    configure_password_hasher(
        time_cost=app.config.get("ARGON2_TIME_COST"),
        memory_cost=app.config.get("ARGON2_MEMORY_COST"),
    )
    app.extensions[PUBLICATION_NAME_KEY] = publication_name or _no_publication_name
    auth.init_app(app)
    nav.init_app(app)
    app.add_template_filter(format_utc, "utc")
    app.register_blueprint(views.bp)
    app.register_blueprint(users_views.bp)
    app.register_blueprint(audit_views.bp)
    nav.add_nav_item(app, "staff.dashboard", _l("Dashboard"), Permission.DASHBOARD, order=0)
    nav.add_nav_item(app, "staff_users.index", _l("Staff"), Permission.STAFF, order=900)
    nav.add_nav_item(app, "staff_audit.index", _l("Audit log"), Permission.AUDIT, order=910)
    app.cli.add_command(cli.staff_cli)


def format_utc(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored time shown in UTC whatever the database's session time zone ("" for None)."""
    if value is None:
        return ""
    return as_utc(value).astimezone(UTC).strftime(fmt)
