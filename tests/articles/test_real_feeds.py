"""Real-world feeds (tests/fixtures/real/feeds/, sources in tests/fixtures/real/SOURCES.md)
imported from a local HTTP server that answers like a real one (Content-Type with its
charset, Content-Location, redirects), each twice; and hostile servers and feeds: one that
trickles bytes, a 50 MB feed, a zero date, billion laughs, a body that looks like a path."""

from __future__ import annotations

import threading
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.staff.factories import force_login, make_staff
from webapp.articles import feeds
from webapp.articles.feeds import (
    FetchedFeed,
    fetch_feed,
    import_feed,
    import_feed_row,
    parse_feed,
)
from webapp.articles.models import Article, ArticleViewDay, Feed
from webapp.articles.reading import get_top_reads
from webapp.digests.content import article_view

REAL = Path(__file__).parents[1] / "fixtures" / "real" / "feeds"
LANGUAGES = ("en", "ru")
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

#: What the server sends for each path: (fixture file, Content-Type, other headers).
ROUTES: dict[str, tuple[str, str, dict[str, str]]] = {
    "/ghost/rss/": ("ghost-noop-today.rss", "application/rss+xml; charset=utf-8", {}),
    "/wp/posts-only.xml": ("wordpress-export-posts-only.xml", "text/xml; charset=UTF-8", {}),
    "/koi8.xml": ("feedparser-koi8r.xml", "application/rss+xml; charset=koi8-r", {}),
    "/cp1251.xml": (
        "derived-feedparser-koi8r-as-windows-1251.xml",
        "application/rss+xml; charset=windows-1251",
        {},
    ),
    "/cp1251-no-charset.xml": (
        "derived-feedparser-koi8r-as-windows-1251.xml",
        "application/rss+xml",
        {},
    ),
    "/base/item.xml": (
        "feedparser-item-link-content-location.xml",
        "text/xml",
        {"Content-Location": "http://example.com/"},
    ),
    "/base/atom.xml": (
        "feedparser-atom-entry-link-content-location.xml",
        "application/atom+xml",
        {"Content-Location": "http://example.com/"},
    ),
    "/docuri/item.xml": ("feedparser-item-link-docuri.xml", "text/xml", {}),
}
#: Moved feeds: the body's links count from where the redirect ends.
REDIRECTS = {"/wordpress/feed": "/wp/posts-only.xml", "/old/item.xml": "/docuri/item.xml"}
#: Generated hostile bodies, by path.
GENERATED: dict[str, bytes] = {}
HUGE_BYTES = 50 * 1024 * 1024


class _RealisticHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    #: Bytes the 50 MB answer really sent (the importer must stop reading long before).
    huge_sent = 0

    def log_message(self, *args: object) -> None:
        """No request log in the test output."""

    def do_GET(self) -> None:  # noqa: N802 (the http.server name)
        if self.path in REDIRECTS:
            self.send_response(301)
            self.send_header("Location", REDIRECTS[self.path])
            self.end_headers()
        elif self.path in ROUTES:
            name, content_type, headers = ROUTES[self.path]
            self._send((REAL / name).read_bytes(), content_type, headers)
        elif self.path in GENERATED:
            self._send(GENERATED[self.path], "application/rss+xml; charset=utf-8", {})
        elif self.path == "/trickle-body":
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.end_headers()
            self._trickle(b"<rss><channel><item><title>slow</title>" * 100)
        elif self.path == "/trickle-headers":
            self.wfile.write(b"HTTP/1.0 200 OK\r\n")
            self._trickle(b"X-Slow: " + b"z" * 10_000)
        elif self.path.startswith("/huge"):
            self._huge(declared=self.path == "/huge-declared")
        else:
            self.send_error(404)

    def _send(self, body: bytes, content_type: str, headers: dict[str, str]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _trickle(self, data: bytes) -> None:
        for byte in data:  # one byte every 50 ms, far below any per-read timeout
            try:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            except OSError:
                return
            time.sleep(0.05)

    def _huge(self, *, declared: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        if declared:
            self.send_header("Content-Length", str(HUGE_BYTES))
        self.end_headers()
        item = b"<item><title>t</title><link>https://example.org/x</link></item>" * 1000
        try:
            self.wfile.write(b"<rss><channel>")
            while _RealisticHandler.huge_sent < HUGE_BYTES:
                self.wfile.write(item)
                _RealisticHandler.huge_sent += len(item)
        except OSError:
            return  # the importer hung up: what it should do


@pytest.fixture(scope="module")
def real_server() -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 answering like a publication's web server."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RealisticHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def import_twice(db_session: Session, url: str, language: str = "en") -> list[Article]:
    """Import `url` into a feed row twice; the second run must change nothing."""
    feed = Feed(url=url, language=language, created_at=NOW)
    db_session.add(feed)
    db_session.flush()
    first = import_feed_row(db_session, feed, fetcher=fetch_feed, languages=LANGUAGES, now=NOW)
    db_session.commit()
    count = len(first_articles := _articles(db_session, feed))
    again = import_feed_row(
        db_session, feed, fetcher=fetch_feed, languages=LANGUAGES, now=NOW + timedelta(hours=1)
    )
    db_session.commit()
    assert (again.created, again.updated, again.unchanged) == (0, 0, first.created)
    assert len(_articles(db_session, feed)) == count
    return first_articles


def _articles(db_session: Session, feed: Feed) -> list[Article]:
    db_session.expire_all()
    return list(
        db_session.scalars(
            select(Article).where(Article.feed_id == feed.id).order_by(Article.published_at.desc())
        )
    )


def test_a_ghost_feed(db_session: Session, real_server: str) -> None:
    articles = import_twice(db_session, f"{real_server}/ghost/rss/")
    assert len(articles) == 15
    newest = articles[0]
    assert newest.title == "What Did I Learn While Creating feed-rs"
    assert newest.url == "https://nooptoday.com/what-did-i-learn-while-creating-feed-rs/"
    assert newest.author == "Muhammed Kadir Tan"
    assert newest.published_at.replace(tzinfo=UTC) == datetime(2023, 11, 15, 11, 56, 32, tzinfo=UTC)
    assert articles[-1].title == "Using Custom Decorators in NestJS"
    assert all(a.url.startswith("https://nooptoday.com/") for a in articles)
    feed = db_session.scalars(select(Feed)).one()
    assert feed.title == "Noop Today" and feed.last_error == "" and feed.last_import_notes == {}


def test_a_moved_wordpress_feed_with_root_relative_links(
    db_session: Session, real_server: str
) -> None:
    articles = import_twice(db_session, f"{real_server}/wordpress/feed")
    # The export's links are root-relative: they count from where the redirect ended.
    assert {(a.title, a.url) for a in articles} == {
        ("Draft Post", f"{real_server}/draft-post"),
        ("Basic Post", f"{real_server}/blog/basic-post.html"),
        ("Another Post", f"{real_server}/blog/another-post.html"),
        ("My CPT Post", f"{real_server}/mycpt/amazing-article"),
    }
    assert articles[0].published_at.replace(tzinfo=UTC) == datetime(
        2013, 11, 2, 23, 2, 32, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("path", "link"),
    [
        ("/base/item.xml", "http://example.com/relative/uri"),  # RSS, Content-Location header
        ("/base/atom.xml", "http://example.com/relative/link"),  # Atom 0.3, Content-Location
        ("/old/item.xml", "{server}/relative/uri"),  # the address after the redirect
    ],
)
def test_feedparser_fixtures_for_relative_links(real_server: str, path: str, link: str) -> None:
    parsed = parse_feed(fetch_feed(real_server + path))
    assert parsed.entries[0]["link"] == link.format(server=real_server)


@pytest.mark.parametrize("path", ["/koi8.xml", "/cp1251.xml"])
def test_cyrillic_feeds_decode_with_the_http_charset(
    db_session: Session, real_server: str, path: str
) -> None:
    fetched = fetch_feed(real_server + path)
    assert fetched.headers["content-type"].startswith("application/rss+xml; charset=")
    assert parse_feed(fetched).entries[0]["title"] == "Как пережить новогоднюю ночь"
    # The one item has no link: skipped and said so, never an error.
    result = import_feed(
        db_session, real_server + path, "ru", fetcher=fetch_feed, languages=LANGUAGES, now=NOW
    )
    assert (result.created, result.skipped, dict(result.notes), result.error) == (
        0,
        1,
        {"no_link": 1},
        "",
    )


def test_without_the_http_charset_a_windows_1251_feed_is_mojibake(real_server: str) -> None:
    """Why the headers must reach feedparser: the same bytes, no charset in Content-Type."""
    title = parse_feed(fetch_feed(f"{real_server}/cp1251-no-charset.xml")).entries[0]["title"]
    assert title != "Как пережить новогоднюю ночь"


ZERO_DATE_FEED = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Mixed</title>
<entry><title>Zero date</title><link href="https://example.org/zero"/>
  <updated>0000-00-00T00:00:00Z</updated></entry>
<entry><title>Good</title><link href="https://example.org/good"/>
  <updated>2026-11-27T10:00:00Z</updated></entry>
<entry><title>No link</title><updated>2026-11-27T10:00:00Z</updated></entry>
<entry><title>Broken</title><link href="https://example.org/broken"/></entry>
</feed>"""


def test_a_zero_date_and_a_broken_entry_lose_nothing_else(
    db_session: Session, real_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    GENERATED["/zero-date.atom"] = ZERO_DATE_FEED
    real_image = feeds._image

    def image_that_breaks_on_one_entry(entry: Any) -> str:
        if entry.get("link") == "https://example.org/broken":
            raise RuntimeError("something no one foresaw")
        return real_image(entry)

    monkeypatch.setattr(feeds, "_image", image_that_breaks_on_one_entry)
    feed = Feed(url=f"{real_server}/zero-date.atom", language="en", created_at=NOW)
    db_session.add(feed)
    db_session.flush()
    result = import_feed_row(db_session, feed, fetcher=fetch_feed, languages=LANGUAGES, now=NOW)
    db_session.commit()
    assert (result.created, result.skipped) == (2, 2)
    assert dict(result.notes) == {"no_link": 1, "unreadable": 1, "undated": 1}
    assert str(result) == (
        "2 new, 0 updated, 0 unchanged, 2 skipped: no link (1), unreadable (1); 1 date unknown"
    )
    db_session.expire_all()
    dates = {a.title: a.published_at for a in db_session.scalars(select(Article))}
    assert dates["Zero date"] is None and dates["Good"] is not None
    assert db_session.get(Feed, feed.id).last_import_notes == {
        "no_link": 1,
        "unreadable": 1,
        "undated": 1,
    }


def test_undated_articles_are_shown_by_import_time(
    app: Any, client: FlaskClient, db_session: Session
) -> None:
    old = Article(
        url="https://example.org/old",
        language="en",
        title="Dated, old",
        published_at=NOW - timedelta(days=3),
        created_at=NOW - timedelta(days=3),
    )
    undated = Article(
        url="https://example.org/undated",
        language="en",
        title="Undated",
        published_at=None,
        created_at=NOW - timedelta(days=1),
    )
    feed = Feed(
        url="https://example.org/feed",
        language="en",
        created_at=NOW,
        last_import_notes={"no_link": 2, "unreadable": 1, "undated": 1},
    )
    db_session.add_all([old, undated, feed])
    db_session.flush()
    for article in (old, undated):  # equal views: the newer one first
        db_session.add(ArticleViewDay(article_id=article.id, day=NOW.date(), views=5))
    db_session.commit()
    top = get_top_reads(db_session, "en", now=NOW)
    assert [read.article.title for read in top] == ["Undated", "Dated, old"]
    assert article_view(undated, "digest", "en", 1)["date"] == ""
    staff = make_staff(db_session, role="editor")
    db_session.commit()
    force_login(client, db_session, staff)
    listing = client.get("/staff/articles/")
    assert listing.status_code == 200
    assert listing.text.index("Undated") < listing.text.index("Dated, old")
    page = client.get("/staff/articles/feeds").text
    assert (
        "3 entries skipped: no link (2), unreadable entry (1); "
        "1 date unknown (listed by import time)"
    ) in page


@pytest.mark.parametrize("path", ["/trickle-body", "/trickle-headers"])
def test_a_trickling_server_is_cut_off_at_the_deadline(real_server: str, path: str) -> None:
    started = time.monotonic()
    with pytest.raises(feeds.FeedError, match="took longer than 0.5 s"):
        fetch_feed(real_server + path, deadline_seconds=0.5)
    assert time.monotonic() - started < 2


def test_the_deadline_setting_reaches_the_fetcher(app: Any) -> None:
    assert app.config["FEED_FETCH_DEADLINE_SECONDS"] == 30.0
    fetcher = feeds.configured_fetcher({"FEED_FETCH_DEADLINE_SECONDS": 0.25})
    assert fetcher.keywords == {"deadline_seconds": 0.25}  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", ["/huge", "/huge-declared"])
def test_a_50_mb_feed_is_refused_without_being_read_whole(real_server: str, path: str) -> None:
    _RealisticHandler.huge_sent = 0
    tracemalloc.start()
    try:
        with pytest.raises(feeds.FeedError, match="larger than 5 MB"):
            fetch_feed(real_server + path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024
    assert _RealisticHandler.huge_sent < HUGE_BYTES


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>Laughs</title>
<item><title>&lol9;</title><link>https://example.org/laughs</link></item>
</channel></rss>"""


def test_billion_laughs_is_not_expanded(db_session: Session, real_server: str) -> None:
    """feedparser drops every entity declaration that refers to another entity before the
    XML parser sees the document (and expat >= 2.4 would refuse the amplification too), so
    `&lol9;` stays a few bytes."""
    GENERATED["/laughs.rss"] = BILLION_LAUGHS
    tracemalloc.start()
    try:
        result = import_feed(
            db_session,
            f"{real_server}/laughs.rss",
            "en",
            fetcher=fetch_feed,
            languages=LANGUAGES,
            now=NOW,
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024
    db_session.commit()
    titles = [a.title for a in db_session.scalars(select(Article))]
    assert result.created + result.skipped == 1
    assert all(len(title) < 100 for title in titles)


def test_a_body_that_looks_like_a_path_is_not_opened(db_session: Session) -> None:
    """feedparser opens bytes that name a file; the importer hands it a stream."""
    secret = Path(__file__).parents[1] / "fixtures" / "real" / "feeds" / "ghost-noop-today.rss"
    result = import_feed(
        db_session,
        "https://example.org/feed",
        "en",
        fetcher=lambda _url: FetchedFeed(str(secret).encode(), _url),
        languages=LANGUAGES,
        now=NOW,
    )
    assert result.created == 0 and result.error
