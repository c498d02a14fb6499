"""`readership articles import-feed URL --language LANG`."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from webapp.articles.feeds import add_feed, configured_fetcher, import_feed_row
from webapp.core.clock import get_clock
from webapp.db import get_database

articles_group = AppGroup("articles", help="Articles and the feeds they come from.")


@articles_group.command("import-feed")
@click.argument("url")
@click.option("--language", required=True, help="Language of the feed's articles, e.g. en or ru.")
@click.option(
    "--once", is_flag=True, help="Import now without adding the feed to the hourly import."
)
def import_feed_command(url: str, language: str, once: bool) -> None:
    """Import the articles of one RSS or Atom feed now (and keep importing it hourly)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    languages = tuple(app.config["LANGUAGES"])
    if language not in languages:
        raise click.BadParameter(f"choose one of {', '.join(languages)}", param_hint="--language")
    now = get_clock(app).now()
    with get_database(app).session() as session:
        feed = add_feed(session, url, language, now=now)
        result = import_feed_row(
            session, feed, fetcher=configured_fetcher(app.config), languages=languages, now=now
        )
        if once:
            session.delete(feed)
        session.commit()
    click.echo(f"{url}: {result}")
    if result.error and not (result.created or result.updated or result.unchanged):
        raise SystemExit(1)
