"""`import-articles`: import every configured feed (hourly)."""

from __future__ import annotations

from flask import Flask

from jobs.registry import Job
from webapp.articles.services import configured_fetcher, import_all_feeds
from webapp.core.clock import get_clock
from webapp.db import get_database


def run_import_articles(app: Flask) -> str:
    """Import each active feed; a broken one is reported, the others still run."""
    with get_database(app).session() as session:
        results = import_all_feeds(
            session,
            fetcher=configured_fetcher(app.config),
            languages=tuple(app.config["LANGUAGES"]),
            now=get_clock(app).now(),
        )
    if not results:
        return "no feeds configured (readership articles import-feed URL --language LANG)"
    failed = sum(1 for result in results.values() if result.error)
    lines = [f"{url}: {result}" for url, result in results.items()]
    return f"{len(results)} feeds, {failed} with problems; " + "; ".join(lines)


#: This module's jobs, gathered by `jobs.registry.load_jobs` (importing it registers nothing).
JOBS: tuple[Job, ...] = (
    Job(
        "import-articles",
        "Import articles from the publication's feeds",
        "hourly",
        run_import_articles,
    ),
)
