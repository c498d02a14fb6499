"""Wires the donation feature into an app (called once from `webapp.features`)."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_babel import lazy_gettext as _l

from webapp.donations.services import (
    DEFAULT_DONATE_EMAIL_LIMIT,
    DEFAULT_DONATE_RATE_LIMIT,
    DEFAULT_DONOR_LINK_RATE_LIMIT,
)


def init_app(app: Flask, csrf: Any) -> None:
    """Build the Stripe gateway, register the public, self-service, webhook and staff
    blueprints and the staff nav item; fill in this feature's configuration defaults."""
    from webapp.donations import gateway, selfservice_views, staff_views, views, webhooks

    app.config.setdefault("DONATE_RATE_LIMIT", DEFAULT_DONATE_RATE_LIMIT)
    app.config.setdefault("DONATE_EMAIL_LIMIT", DEFAULT_DONATE_EMAIL_LIMIT)
    app.config.setdefault("DONOR_LINK_RATE_LIMIT", DEFAULT_DONOR_LINK_RATE_LIMIT)
    app.config.setdefault("DONOR_LINK_MAX_AGE_HOURS", 72)
    # Stripe's own default: a signed event older than five minutes is refused.
    app.config.setdefault("STRIPE_WEBHOOK_TOLERANCE", 300)
    gateway.init_app(app)
    app.register_blueprint(views.bp)
    app.register_blueprint(selfservice_views.bp)
    app.register_blueprint(staff_views.bp)
    app.register_blueprint(webhooks.bp)
    # The webhook is authenticated by its Stripe signature, not a CSRF token.
    csrf.exempt(webhooks.bp)
    from webapp.donations.erasure import erase_donor
    from webapp.subscribers.erasure import register_erasure_hook

    register_erasure_hook(erase_donor)
    from webapp.staff.nav import register_nav_item
    from webapp.staff.roles import Permission

    register_nav_item("donations_staff.index", _l("Donations"), Permission.DONATIONS, 15)
