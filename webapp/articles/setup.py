"""Wires the articles feature into an app (called once from `webapp.features`)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the `readership articles` commands."""
    from webapp.articles.cli import articles_group

    app.cli.add_command(articles_group)
