"""Registers each feature's blueprints, CLI commands and template helpers on the app."""

from __future__ import annotations

from flask import Flask
from flask_wtf.csrf import CSRFProtect


def register_features(app: Flask, csrf: CSRFProtect) -> None:
    """Wire every feature package into `app` (the one place that knows them all)."""
    from webapp.site import views as site_views
    from webapp.site.context import init_app as init_site_context

    init_site_context(app)
    app.register_blueprint(site_views.bp)

    from webapp.staff.setup import init_app as init_staff

    init_staff(app)

    # Email: the Mailer (renderer + sender), the staff mailbox viewer and outbox pages.
    from webapp.outbox.setup import init_app as init_outbox

    init_outbox(app)

    # The newsletter list: public signup/preferences pages, staff pages, CSV and demo CLI.
    from webapp.subscribers.setup import init_app as init_subscribers

    init_subscribers(app, csrf)

    # Donations: donation and campaign pages, Stripe Checkout and webhooks, self-service.
    from webapp.donations.setup import init_app as init_donations

    init_donations(app, csrf)

    # Articles: feed import (the digest and top reads build on them).
    from webapp.articles.setup import init_app as init_articles

    init_articles(app, csrf)

    # The weekly digest: issues, staff review, public archive, the sending engine.
    from webapp.digests.setup import init_app as init_digests

    init_digests(app)

    # Supporter reports: the dashboard (the staff start page) and the reports behind it.
    from webapp.reports.setup import init_app as init_reports

    init_reports(app)
