"""Wires email into the app: the Mailer, the staff pages and their nav entries."""

from __future__ import annotations

from flask import Flask
from flask_babel import lazy_gettext as _l

from webapp.outbox import gateway
from webapp.outbox.views import bp
from webapp.staff.services import Permission, add_nav_item


def init_app(app: Flask) -> None:
    """Build the Mailer, register the staff mailbox/outbox blueprint and nav entries."""
    gateway.init_app(app)
    app.register_blueprint(bp)
    # One section for both pages (they link to each other), so the bar stays short.
    add_nav_item(app, "outbox.mailbox", _l("Email"), Permission.OUTBOX, order=80)
