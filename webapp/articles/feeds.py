"""Importing articles from RSS and Atom feeds (feedparser).

Idempotent: an article is identified by its URL, so importing a feed again updates what
changed and never duplicates. A broken, unreachable or empty feed is reported (the result's
`error`, kept on the `Feed` row for staff and in the job log), never raised.
"""

from __future__ import annotations

import calendar
import contextlib
import html
import http.client
import io
import logging
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.articles.models import Article, Feed

log = logging.getLogger("readership.articles")

#: The largest feed read; anything bigger is refused (a feed is a few hundred kilobytes).
MAX_FEED_BYTES = 5 * 1024 * 1024
#: How long one read (connect, or waiting for the next bytes) may block.
FETCH_TIMEOUT_SECONDS = 15.0
#: How long a whole fetch may take, redirects and body included (FEED_FETCH_DEADLINE_SECONDS).
DEFAULT_FETCH_DEADLINE_SECONDS = 30.0
_READ_CHUNK = 64 * 1024
#: The response headers feedparser reads: the charset, the base of relative links, the language.
_HEADERS_FOR_PARSER = ("content-type", "content-location", "content-language")
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")

#: Why an entry was skipped, or kept with a flaw; the keys of `Feed.last_import_notes`.
ENTRY_NOTES = ("no_link", "no_title", "link_too_long", "duplicate_link", "unreadable", "undated")


class FeedError(Exception):
    """The feed could not be read; the message says why, for staff."""


@dataclass(frozen=True)
class FetchedFeed:
    """A feed's bytes with what the server said about them."""

    body: bytes
    #: The address the body came from, after redirects (the base of relative links).
    url: str
    #: Response headers, names in lower case.
    headers: Mapping[str, str] = field(default_factory=dict)


#: Reads a feed; raises `FeedError`. Tests pass the real one a local server's URL; a test
#: double may return bare bytes (no headers, the asked URL as base).
Fetcher = Callable[[str], "FetchedFeed | bytes"]


class _Deadline:
    """Ends a fetch when its time is up: every socket the fetch opened is shut down, which
    wakes a read blocked on a server that trickles bytes (in the headers or the body), so
    the per-read timeout cannot be stretched into minutes."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends_at = time.monotonic() + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def passed(self) -> bool:
        return self.expired or time.monotonic() >= self.ends_at

    def cancel(self) -> None:
        self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        # The plain socket's shutdown, also for TLS: it only has to wake the reader.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects to http and https only (urllib would follow one to ftp too)."""

    def redirect_request(
        self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        if urlsplit(newurl).scheme not in ("http", "https"):
            raise urllib.error.HTTPError(
                newurl, code, "redirect to a non-HTTP address", headers, fp
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener(deadline: _Deadline) -> urllib.request.OpenerDirector:
    """An opener whose connections register their sockets with `deadline`."""

    class Connection(http.client.HTTPConnection):
        def connect(self) -> None:
            super().connect()
            deadline.watch(self.sock)

    class TlsConnection(http.client.HTTPSConnection):
        def connect(self) -> None:
            super().connect()
            deadline.watch(self.sock)

    class Handler(urllib.request.HTTPHandler):
        def http_open(self, req: Any) -> Any:
            return self.do_open(Connection, req)

    class TlsHandler(urllib.request.HTTPSHandler):
        def https_open(self, req: Any) -> Any:
            return self.do_open(TlsConnection, req, context=self._context)  # type: ignore[attr-defined]

    opener = urllib.request.OpenerDirector()
    for handler in (
        Handler(),
        TlsHandler(),
        _HttpOnlyRedirects(),
        urllib.request.HTTPErrorProcessor(),
        urllib.request.HTTPDefaultErrorHandler(),
    ):
        opener.add_handler(handler)
    return opener


def fetch_feed(
    url: str,
    *,
    deadline_seconds: float = DEFAULT_FETCH_DEADLINE_SECONDS,
    max_bytes: int = MAX_FEED_BYTES,
) -> FetchedFeed:
    """GET `url` (http or https only), following redirects, within one overall deadline
    and a size cap; the body is read in chunks, so a huge feed is refused after `max_bytes`
    and never held whole."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise FeedError("only http and https feeds can be read")
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url,
        headers={
            "User-Agent": "Readership feed importer",
            "Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.5",
        },
    )
    too_slow = FeedError(f"the feed took longer than {deadline_seconds:g} s to download")
    too_big = FeedError(f"the feed is larger than {max_bytes // (1024 * 1024)} MB")
    deadline = _Deadline(deadline_seconds)
    try:
        timeout = min(FETCH_TIMEOUT_SECONDS, deadline_seconds)
        with _opener(deadline).open(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > max_bytes:
                raise too_big
            chunks: list[bytes] = []
            size = 0
            while chunk := response.read(_READ_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise too_big
                if deadline.passed():
                    raise too_slow
                chunks.append(chunk)
            if deadline.passed():  # the shut-down socket reads as a (short) end of file
                raise too_slow
            headers = {name.lower(): value for name, value in response.headers.items()}
            return FetchedFeed(b"".join(chunks), response.geturl(), headers)
    except FeedError:
        raise
    except urllib.error.HTTPError as exc:
        raise FeedError(f"the server answered {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        if deadline.passed():
            raise too_slow from exc
        reason = getattr(exc, "reason", exc)
        raise FeedError(f"the feed could not be reached: {reason}") from exc
    finally:
        deadline.cancel()


def configured_fetcher(config: Mapping[str, Any]) -> Fetcher:
    """`fetch_feed` with the app's deadline setting (FEED_FETCH_DEADLINE_SECONDS)."""
    seconds = float(config.get("FEED_FETCH_DEADLINE_SECONDS") or DEFAULT_FETCH_DEADLINE_SECONDS)
    return partial(fetch_feed, deadline_seconds=seconds)


@dataclass
class ImportResult:
    """What importing one feed did."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    error: str = ""
    title: str = ""
    #: Entries skipped, by reason, and "undated" for those kept without a date.
    notes: Counter[str] = field(default_factory=Counter)

    def skip(self, reason: str) -> None:
        self.skipped += 1
        self.notes[reason] += 1

    def __str__(self) -> str:
        if self.error and not (self.created or self.updated or self.unchanged):
            return f"failed: {self.error}"
        text = (
            f"{self.created} new, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.skipped} skipped"
        )
        reasons = [
            f"{name.replace('_', ' ')} ({count})"
            for name, count in sorted(self.notes.items())
            if name != "undated"
        ]
        if reasons:
            text += ": " + ", ".join(reasons)
        if self.notes["undated"]:
            text += f"; {self.notes['undated']} date unknown"
        return text + (f" ({self.error})" if self.error else "")


def plain_text(fragment: str, limit: int) -> str:
    """HTML (a feed summary) as one line of plain text, at most `limit` characters."""
    text = _SPACE.sub(" ", html.unescape(_TAG.sub(" ", fragment or ""))).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def translation_key(url: str, languages: tuple[str, ...]) -> str:
    """The article's slug: the URL's last path segment, so `/en/x` and `/ru/x` match."""
    segments = [s for s in urlsplit(url).path.split("/") if s and s not in languages]
    return segments[-1][:300] if segments else ""


#: Dates before this are placeholders (MySQL's `0000-00-00`, the Unix epoch), not dates.
_EARLIEST_DATE = datetime(1970, 1, 2, tzinfo=UTC)


def _published(entry: Any) -> datetime | None:
    """The entry's date, or None when it has none or none that is a real date."""
    for name in ("published_parsed", "updated_parsed"):
        # dict.get, not entry.get: feedparser maps a missing `updated_parsed` to
        # `published_parsed` with a DeprecationWarning; the fallback is this loop's job.
        value = dict.get(entry, name)
        if not value:
            continue
        try:
            moment = datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
        except (ValueError, OverflowError, OSError, TypeError):
            continue  # e.g. year 0: "year -1 is out of range"
        if moment >= _EARLIEST_DATE:
            return moment
    return None


def _image(entry: Any) -> str:
    for media in list(entry.get("media_content") or []) + list(entry.get("media_thumbnail") or []):
        url = media.get("url", "")
        if url.startswith(("http://", "https://")):
            return str(url)[:1000]
    for link in entry.get("links") or []:
        if link.get("rel") == "enclosure" and str(link.get("type", "")).startswith("image/"):
            return str(link.get("href", ""))[:1000]
    return ""


class _SkippedEntry(Exception):
    """An entry that cannot become an article; `reason` is one of `ENTRY_NOTES`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _entry_values(entry: Any, language: str, languages: tuple[str, ...]) -> dict[str, Any]:
    """The article's columns from a feed entry; raises `_SkippedEntry`."""
    link = str(entry.get("link") or "").strip()
    title = plain_text(str(entry.get("title") or ""), 500)
    if not link.startswith(("http://", "https://")):
        raise _SkippedEntry("no_link")
    if len(link) > 1000:
        raise _SkippedEntry("link_too_long")
    if not title:
        raise _SkippedEntry("no_title")
    tags = entry.get("tags") or []
    return {
        "url": link,
        "guid": (str(entry.get("id") or "") or None) and str(entry.get("id"))[:1000],
        "language": language,
        "title": title,
        "lede": plain_text(str(entry.get("summary") or ""), 1000),
        "author": plain_text(str(entry.get("author") or ""), 300),
        "section": plain_text(str(tags[0].get("term") or ""), 200) if tags else "",
        "image_url": _image(entry),
        "published_at": _published(entry),
        "translation_key": translation_key(link, languages),
    }


def parse_feed(fetched: FetchedFeed) -> Any:
    """feedparser's reading of a fetched feed, given the HTTP headers (their charset wins
    over the document's guess) and the final address as the base of relative links."""
    headers = {
        name: fetched.headers[name] for name in _HEADERS_FOR_PARSER if name in fetched.headers
    }
    # A relative Content-Location counts from the address the body came from.
    headers["content-location"] = urljoin(fetched.url, headers.get("content-location", ""))
    # A stream, never bytes: feedparser opens bytes that look like a path as a local file.
    return feedparser.parse(io.BytesIO(fetched.body), response_headers=headers)


#: Flaws feedparser reports that lose nothing: the HTTP charset overrode the document's,
#: or the server called the feed text/plain or text/html.
_HARMLESS_FLAWS = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)


def import_feed(
    session: Session,
    url: str,
    language: str,
    *,
    fetcher: Fetcher,
    languages: tuple[str, ...],
    now: datetime,
    feed: Feed | None = None,
) -> ImportResult:
    """Import every entry of one feed into `session` (the caller commits). Each entry is
    saved on its own (a savepoint): one that cannot be read is skipped and counted, the
    others are kept."""
    result = ImportResult()
    try:
        fetched = fetcher(url)
    except FeedError as exc:
        result.error = str(exc)
        return result
    if isinstance(fetched, bytes):
        fetched = FetchedFeed(fetched, url)
    parsed = parse_feed(fetched)
    entries = list(parsed.get("entries") or [])
    problem = parsed.get("bozo_exception")
    harmless = problem is None or isinstance(problem, _HARMLESS_FLAWS)
    if not entries:
        result.error = (
            f"the feed has no entries{f' ({problem})' if problem else ''}"
            if harmless
            else f"not a readable feed: {problem}"
        )
        return result
    if not harmless:
        # Lenient, like a feed reader: take what could be read, and say the feed is flawed.
        result.error = f"the feed is not well formed: {problem}"
    result.title = plain_text(str(parsed.get("feed", {}).get("title") or ""), 300)
    seen: set[str] = set()
    for entry in entries:
        try:
            values = _entry_values(entry, language, languages)
            if values["url"] in seen:
                raise _SkippedEntry("duplicate_link")
            with session.begin_nested():
                outcome = _save_entry(session, values, feed=feed, now=now)
        except _SkippedEntry as skipped:
            result.skip(skipped.reason)
            continue
        except Exception:  # one entry that breaks the import must not lose the others
            log.exception("feed %s: an entry could not be imported", url)
            result.skip("unreadable")
            continue
        seen.add(values["url"])
        setattr(result, outcome, getattr(result, outcome) + 1)
        if values["published_at"] is None:
            result.notes["undated"] += 1
    session.flush()
    return result


def _save_entry(
    session: Session, values: dict[str, Any], *, feed: Feed | None, now: datetime
) -> str:
    """Create or update the entry's article; says which ("created", "updated", "unchanged")."""
    article = session.scalar(select(Article).where(Article.url == values["url"]))
    if article is None:
        session.add(Article(**values, feed=feed, created_at=now))
        return "created"
    if is_staff_translation_key(article.translation_key):
        values.pop("translation_key")  # a link staff chose outlives the slug rule
    if values["published_at"] is None:
        values.pop("published_at")  # a date that cannot be read now does not erase a known one
    changed = {k: v for k, v in values.items() if _differs(getattr(article, k), v)}
    if not changed:
        return "unchanged"
    for name, value in changed.items():
        setattr(article, name, value)
    article.updated_at = now
    return "updated"


#: Translation keys set on the staff pages start with one of these; imports keep them.
STAFF_KEY_PREFIXES = ("staff-", "article-")


def is_staff_translation_key(key: str) -> bool:
    """True for a translation link chosen by staff (not derived from the URL's slug)."""
    return key.startswith(STAFF_KEY_PREFIXES)


def _differs(old: Any, new: Any) -> bool:
    if isinstance(old, datetime) and isinstance(new, datetime):
        old = old if old.tzinfo else old.replace(tzinfo=UTC)
    return bool(old != new)


def add_feed(session: Session, url: str, language: str, *, now: datetime) -> Feed:
    """The feed with this URL, created when new (its language follows `language`)."""
    feed = session.scalar(select(Feed).where(Feed.url == url))
    if feed is None:
        feed = Feed(url=url, language=language, created_at=now)
        session.add(feed)
        session.flush()
    feed.language = language
    return feed


def import_feed_row(
    session: Session, feed: Feed, *, fetcher: Fetcher, languages: tuple[str, ...], now: datetime
) -> ImportResult:
    """Import one configured feed and keep the outcome on its row (for staff)."""
    result = import_feed(
        session,
        feed.url,
        feed.language,
        fetcher=fetcher,
        languages=languages,
        now=now,
        feed=feed,
    )
    feed.last_fetched_at = now
    feed.last_error = result.error
    feed.last_import_notes = dict(result.notes)
    if result.created or result.updated or result.unchanged:
        feed.last_success_at = now
        feed.title = result.title or feed.title
    return result


def import_all_feeds(
    session: Session, *, fetcher: Fetcher, languages: tuple[str, ...], now: datetime
) -> dict[str, ImportResult]:
    """Import every active feed, each committed on its own; returns the results by URL."""
    results: dict[str, ImportResult] = {}
    feeds = session.scalars(select(Feed).where(Feed.is_active.is_(True)).order_by(Feed.id))
    for feed in list(feeds):
        try:
            results[feed.url] = import_feed_row(
                session, feed, fetcher=fetcher, languages=languages, now=now
            )
            session.commit()
        except Exception as exc:  # one bad feed must not stop the others
            session.rollback()
            log.exception("feed %s failed", feed.url)
            results[feed.url] = ImportResult(error=f"import failed: {type(exc).__name__}")
            feed.last_fetched_at = now
            feed.last_error = results[feed.url].error
            feed.last_import_notes = {}
            session.commit()
        if results[feed.url].error:
            log.warning("feed %s: %s", feed.url, results[feed.url])
    return results
