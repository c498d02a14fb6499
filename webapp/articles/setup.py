"""Wires the articles feature into an app (called once from `webapp.features`)."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_babel import lazy_gettext as _l


def init_app(app: Flask, csrf: Any) -> None:
    """Register the beacon and top-reads routes, the staff article and feed pages with
    their nav item, and the `readership articles` commands."""
    from webapp.articles import staff_views, views
    from webapp.articles.cli import articles_group
    from webapp.staff.services import Permission, add_nav_item

    app.config.setdefault("TOP_READS_DAYS", 7)
    app.config.setdefault("TOP_READS_COUNT", 6)
    # One feed fetch, redirects and body included, ends after this (a per-read timeout
    # alone lets a server that trickles bytes hold the import for as long as it likes).
    app.config.setdefault("FEED_FETCH_DEADLINE_SECONDS", 30.0)
    app.register_blueprint(views.bp)
    app.register_blueprint(staff_views.bp)
    # The beacon is posted by the publication's pages (another origin) and changes nothing
    # but a counter: no CSRF token to check.
    csrf.exempt(views.view_beacon)
    app.cli.add_command(articles_group)
    add_nav_item(app, "articles_staff.index", _l("Articles"), Permission.ARTICLES, 40)
