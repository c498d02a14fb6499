"""Wires the subscriber feature into an app (called once from `webapp.features`)."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_babel import lazy_gettext as _l

from webapp.subscribers.settings import DEFAULT_IMPORT_MAX_BYTES, DEFAULT_SUBSCRIBE_RATE_LIMIT


def init_app(app: Flask, csrf: Any) -> None:
    """Register the public and staff blueprints, CLI commands, the staff nav item and the
    outbox's bounce hook; fill in this feature's configuration defaults."""
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
    _register_nav()
    _register_bounce_hook()


def _register_nav() -> None:
    from webapp.staff.nav import register_nav_item
    from webapp.staff.roles import Permission

    register_nav_item("subscribers_staff.index", _l("Subscribers"), Permission.SUBSCRIBERS_VIEW, 20)


def _register_bounce_hook() -> None:
    from webapp.outbox import services as outbox
    from webapp.subscribers.services import suppress_on_permanent_failure

    # A list shared by every app in the process: add the hook once.
    if suppress_on_permanent_failure not in outbox.on_permanent_failure:
        outbox.on_permanent_failure.append(suppress_on_permanent_failure)
