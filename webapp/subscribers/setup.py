"""Wires the subscriber feature into an app (called once from `webapp.features`)."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_babel import lazy_gettext as _l

from webapp.subscribers.settings import DEFAULT_IMPORT_MAX_BYTES, DEFAULT_SUBSCRIBE_RATE_LIMIT


def init_app(app: Flask, csrf: Any) -> None:
    """Register the public and staff blueprints, CLI commands and the staff nav item; fill in
    this feature's configuration defaults (the outbox's bounces reach it through the
    `permanent_failure` signal, connected by `webapp.features`)."""
    from webapp.subscribers import cli, staff_views, views

    app.config.setdefault("SUBSCRIBE_RATE_LIMIT", DEFAULT_SUBSCRIBE_RATE_LIMIT)
    app.config.setdefault("SUBSCRIBER_IMPORT_MAX_BYTES", DEFAULT_IMPORT_MAX_BYTES)
    app.register_blueprint(views.bp)
    app.register_blueprint(staff_views.bp)
    views.exempt_from_csrf(csrf)
    # Ahead of CSRFProtect's hook, which reads (and would first accept) the whole upload.
    app.before_request_funcs.setdefault(None, []).insert(0, staff_views.limit_import_upload)
    app.cli.add_command(cli.subscribers_group)
    app.cli.add_command(cli.demo_command)
    _register_nav(app)


def _register_nav(app: Flask) -> None:
    from webapp.staff.services import Permission, add_nav_item

    add_nav_item(app, "subscribers_staff.index", _l("Subscribers"), Permission.SUBSCRIBERS_VIEW, 20)
