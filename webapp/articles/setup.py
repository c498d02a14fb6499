"""Wires the articles feature into an app (called once from `webapp.features`)."""

from __future__ import annotations

from typing import Any

from flask import Flask


def init_app(app: Flask, csrf: Any) -> None:
    """Register the beacon and top-reads routes and the `readership articles` commands."""
    from webapp.articles import views
    from webapp.articles.cli import articles_group

    app.config.setdefault("TOP_READS_DAYS", 7)
    app.config.setdefault("TOP_READS_COUNT", 6)
    app.register_blueprint(views.bp)
    # The beacon is posted by the publication's pages (another origin) and changes nothing
    # but a counter: no CSRF token to check.
    csrf.exempt(views.view_beacon)
    app.cli.add_command(articles_group)
