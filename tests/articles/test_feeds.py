"""Feed import against a real local HTTP server serving RSS and Atom fixtures (and broken
ones): idempotent, translations linked, bad or unreachable feeds reported, never raised."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.articles.feeds import fetch_feed, import_all_feeds, import_feed
from webapp.articles.models import Article, Feed
from webapp.cli import main

FEEDS = Path(__file__).parent / "feeds"
LANGUAGES = ("en", "ru")
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        """No request log in the test output."""


@pytest.fixture(scope="module")
def feed_server() -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 serving tests/articles/feeds/."""
    handler = functools.partial(_Quiet, directory=str(FEEDS))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def articles(session: Session) -> list[Article]:
    session.expire_all()
    return list(session.scalars(select(Article).order_by(Article.url)))


def test_an_rss_feed_is_imported_with_every_field(db_session: Session, feed_server: str) -> None:
    result = import_feed(
        db_session, f"{feed_server}/en.rss", "en", fetcher=fetch_feed, languages=LANGUAGES, now=NOW
    )
    db_session.commit()
    assert (result.created, result.skipped, result.error) == (2, 2, "")
    assert result.title == "The Meridian (English)"
    sanctions, election = articles(db_session)
    assert sanctions.title == "Sanctions, explained"
    assert sanctions.lede == "What the new package changes — and what it does not."
    assert (sanctions.author, sanctions.section, sanctions.guid) == (
        "Anna Petrova",
        "Economy",
        "meridian-101",
    )
    assert sanctions.image_url == "https://meridian.example.org/img/sanctions.jpg"
    assert sanctions.published_at.replace(tzinfo=UTC) == datetime(2026, 11, 23, 8, tzinfo=UTC)
    assert election.image_url == "https://meridian.example.org/img/election.png"
    assert election.published_at.replace(tzinfo=UTC) == datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    assert sanctions.translation_key == "sanctions-explained" and sanctions.language == "en"


def test_importing_again_updates_and_never_duplicates(
    db_session: Session, feed_server: str
) -> None:
    url = f"{feed_server}/en.rss"
    import_feed(db_session, url, "en", fetcher=fetch_feed, languages=LANGUAGES, now=NOW)
    db_session.commit()
    article = articles(db_session)[0]
    article.title = "An old title"
    db_session.commit()
    again = import_feed(db_session, url, "en", fetcher=fetch_feed, languages=LANGUAGES, now=NOW)
    db_session.commit()
    assert (again.created, again.updated, again.unchanged) == (0, 1, 1)
    assert len(articles(db_session)) == 2
    assert articles(db_session)[0].title == "Sanctions, explained"


def test_a_translation_link_chosen_by_staff_survives_the_next_import(
    db_session: Session, feed_server: str
) -> None:
    url = f"{feed_server}/en.rss"
    import_feed(db_session, url, "en", fetcher=fetch_feed, languages=LANGUAGES, now=NOW)
    article = articles(db_session)[0]
    article.translation_key = "staff-42"
    db_session.commit()
    import_feed(db_session, url, "en", fetcher=fetch_feed, languages=LANGUAGES, now=NOW)
    db_session.commit()
    db_session.expire_all()
    assert articles(db_session)[0].translation_key == "staff-42"


def test_an_atom_feed_and_its_translations(db_session: Session, feed_server: str) -> None:
    for name, language in (("en.rss", "en"), ("ru.atom", "ru")):
        import_feed(
            db_session,
            f"{feed_server}/{name}",
            language,
            fetcher=fetch_feed,
            languages=LANGUAGES,
            now=NOW,
        )
    db_session.commit()
    pair = db_session.scalars(
        select(Article)
        .where(Article.translation_key == "sanctions-explained")
        .order_by(Article.language)
    ).all()
    assert [(a.language, a.title) for a in pair] == [
        ("en", "Sanctions, explained"),
        ("ru", "Санкции: объяснение"),
    ]
    assert pair[1].author == "Анна Петрова" and pair[1].section == "Экономика"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("missing.rss", "404"),
        ("not-a-feed.html", "no entries"),
    ],
)
def test_bad_feeds_are_reported_not_raised(
    db_session: Session, feed_server: str, name: str, expected: str
) -> None:
    result = import_feed(
        db_session, f"{feed_server}/{name}", "en", fetcher=fetch_feed, languages=LANGUAGES, now=NOW
    )
    assert expected in result.error and result.created == 0
    assert str(result).startswith("failed:")


def test_a_broken_feed_gives_what_it_can_and_says_it_is_broken(
    db_session: Session, feed_server: str
) -> None:
    result = import_feed(
        db_session,
        f"{feed_server}/broken.rss",
        "en",
        fetcher=fetch_feed,
        languages=LANGUAGES,
        now=NOW,
    )
    assert result.created == 1 and "not well formed" in result.error


def test_unreachable_and_non_http_feeds(db_session: Session) -> None:
    for url in ("http://127.0.0.1:9/feed.xml", "file:///etc/passwd", "ftp://example.org/f"):
        result = import_feed(
            db_session, url, "en", fetcher=fetch_feed, languages=LANGUAGES, now=NOW
        )
        assert result.error and result.created == 0


def test_the_job_imports_every_feed_and_keeps_each_outcome(
    app: Flask, db_session: Session, feed_server: str, runner: FlaskCliRunner
) -> None:
    for name, language in (("en.rss", "en"), ("ru.atom", "ru"), ("missing.rss", "en")):
        db_session.add(Feed(url=f"{feed_server}/{name}", language=language, created_at=NOW))
    db_session.commit()
    result = runner.invoke(main, ["jobs", "run", "import-articles"])
    assert result.exit_code == 0, result.output
    assert "3 feeds, 1 with problems" in result.output
    db_session.expire_all()
    feeds = {f.url.rsplit("/", 1)[-1]: f for f in db_session.scalars(select(Feed))}
    assert feeds["en.rss"].last_success_at and feeds["en.rss"].last_error == ""
    assert feeds["en.rss"].title == "The Meridian (English)"
    assert "404" in feeds["missing.rss"].last_error and feeds["missing.rss"].last_success_at is None
    assert db_session.scalar(select(func.count()).select_from(Article)) == 3
    again = import_all_feeds(db_session, fetcher=fetch_feed, languages=LANGUAGES, now=NOW)
    assert db_session.scalar(select(func.count()).select_from(Article)) == 3
    assert again[f"{feed_server}/en.rss"].unchanged == 2


def test_the_import_feed_command(
    db_session: Session, feed_server: str, runner: FlaskCliRunner
) -> None:
    result = runner.invoke(
        main, ["articles", "import-feed", f"{feed_server}/ru.atom", "--language", "ru"]
    )
    assert result.exit_code == 0, result.output
    assert "1 new" in result.output
    assert db_session.scalar(select(func.count()).select_from(Feed)) == 1
    once = runner.invoke(
        main, ["articles", "import-feed", f"{feed_server}/en.rss", "--language", "en", "--once"]
    )
    assert once.exit_code == 0 and "2 new" in once.output
    assert db_session.scalar(select(func.count()).select_from(Feed)) == 1
    bad = runner.invoke(
        main, ["articles", "import-feed", f"{feed_server}/en.rss", "--language", "de"]
    )
    assert bad.exit_code != 0 and "choose one of" in bad.output
    missing = runner.invoke(
        main, ["articles", "import-feed", f"{feed_server}/missing.rss", "--language", "en"]
    )
    assert missing.exit_code == 1 and "404" in missing.output
