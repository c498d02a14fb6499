"""Wires the donation feature into an app (called once from `webapp.features`)."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_babel import lazy_gettext as _l

from webapp.donations.records import (
    DEFAULT_DONATE_EMAIL_LIMIT,
    DEFAULT_DONATE_RATE_LIMIT,
    DEFAULT_DONOR_LINK_RATE_LIMIT,
)


def init_app(app: Flask, csrf: Any) -> None:
    """Build the Stripe gateway, register the public, self-service, webhook and staff
    blueprints and the staff nav item; fill in this feature's configuration defaults (its
    erasure and demo data are connected to the subscriber signals by `webapp.features`)."""
    from webapp.donations import gateway, selfservice_views, staff_views, views, webhooks

    app.config.setdefault("DONATE_RATE_LIMIT", DEFAULT_DONATE_RATE_LIMIT)
    app.config.setdefault("DONATE_EMAIL_LIMIT", DEFAULT_DONATE_EMAIL_LIMIT)
    app.config.setdefault("DONOR_LINK_RATE_LIMIT", DEFAULT_DONOR_LINK_RATE_LIMIT)
    app.config.setdefault("DONOR_LINK_MAX_AGE_HOURS", 72)
    # Stripe's own default: a signed event older than five minutes is refused.
    app.config.setdefault("STRIPE_WEBHOOK_TOLERANCE", 300)
    gateway.init_app(app)
    _register_template_helpers(app)
    app.register_blueprint(views.bp)
    app.register_blueprint(selfservice_views.bp)
    app.register_blueprint(staff_views.bp)
    app.register_blueprint(webhooks.bp)
    # The webhook is authenticated by its Stripe signature, not a CSRF token.
    csrf.exempt(webhooks.bp)
    from webapp.staff.services import Permission, add_nav_item

    add_nav_item(app, "donations_staff.index", _l("Donations"), Permission.DONATIONS, 15)


def _register_template_helpers(app: Flask) -> None:
    from webapp.core.money import format_money, format_plain

    def format_others(totals: dict[str, int], language: str) -> str:
        return ", ".join(format_money(v, c, language) for c, v in sorted(totals.items()))

    def format_date_for(moment: Any, language: str) -> str:
        from babel.dates import format_date

        return format_date(moment, format="long", locale=language) if moment else ""

    from webapp.donations.mail import kind_label

    def format_basis_points(basis_points: int, language: str) -> str:
        from babel.numbers import format_percent

        return format_percent(basis_points / 10_000, format="#,##0.##%", locale=language)

    app.add_template_global(format_basis_points, "format_basis_points")
    app.add_template_global(kind_label, "kind_label")
    app.add_template_global(format_date_for, "format_date_for")
    app.add_template_global(format_money, "format_money")
    app.add_template_global(format_plain, "format_plain")
    app.add_template_global(format_others, "format_others")
