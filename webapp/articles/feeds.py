"""Importing articles from RSS and Atom feeds (feedparser).

Idempotent: an article is identified by its URL, so importing a feed again updates what
changed and never duplicates. A broken, unreachable or empty feed is reported (the result's
`error`, kept on the `Feed` row for staff and in the job log), never raised.
"""

from __future__ import annotations

import calendar
import html
import logging
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import feedparser
from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.articles.models import Article, Feed

log = logging.getLogger("readership.articles")

#: The largest feed read; anything bigger is refused (a feed is a few hundred kilobytes).
MAX_FEED_BYTES = 5 * 1024 * 1024
FETCH_TIMEOUT_SECONDS = 15.0
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


class FeedError(Exception):
    """The feed could not be read; the message says why, for staff."""


#: Reads a feed's bytes; raises `FeedError`. Tests pass the real one a local server's URL.
Fetcher = Callable[[str], bytes]


def fetch_feed(url: str) -> bytes:
    """GET `url` (http or https only) with a timeout and a size cap."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise FeedError("only http and https feeds can be read")
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url,
        headers={
            "User-Agent": "Readership feed importer",
            "Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.5",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_SECONDS) as response:  # noqa: S310
            body = response.read(MAX_FEED_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise FeedError(f"the server answered {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FeedError(f"the feed could not be reached: {reason}") from exc
    if len(body) > MAX_FEED_BYTES:
        raise FeedError(f"the feed is larger than {MAX_FEED_BYTES // (1024 * 1024)} MB")
    return bytes(body)


@dataclass
class ImportResult:
    """What importing one feed did."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    error: str = ""
    title: str = ""

    def __str__(self) -> str:
        if self.error and not (self.created or self.updated or self.unchanged):
            return f"failed: {self.error}"
        return (
            f"{self.created} new, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.skipped} skipped" + (f" ({self.error})" if self.error else "")
        )


def plain_text(fragment: str, limit: int) -> str:
    """HTML (a feed summary) as one line of plain text, at most `limit` characters."""
    text = _SPACE.sub(" ", html.unescape(_TAG.sub(" ", fragment or ""))).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def translation_key(url: str, languages: tuple[str, ...]) -> str:
    """The article's slug: the URL's last path segment, so `/en/x` and `/ru/x` match."""
    segments = [s for s in urlsplit(url).path.split("/") if s and s not in languages]
    return segments[-1][:300] if segments else ""


def _published(entry: Any) -> datetime | None:
    for name in ("published_parsed", "updated_parsed"):
        value = entry.get(name)
        if value:
            return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
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


def _entry_values(entry: Any, language: str, languages: tuple[str, ...]) -> dict[str, Any] | None:
    link = str(entry.get("link") or "").strip()
    title = plain_text(str(entry.get("title") or ""), 500)
    if not link.startswith(("http://", "https://")) or not title or len(link) > 1000:
        return None
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
    """Import every entry of one feed into `session` (the caller commits)."""
    result = ImportResult()
    try:
        parsed = feedparser.parse(fetcher(url))
    except FeedError as exc:
        result.error = str(exc)
        return result
    entries = list(parsed.get("entries") or [])
    if not entries:
        problem = parsed.get("bozo_exception")
        result.error = f"not a readable feed: {problem}" if problem else "the feed has no entries"
        return result
    if parsed.get("bozo"):
        # Lenient, like a feed reader: take what could be read, and say the feed is flawed.
        result.error = f"the feed is not well formed: {parsed.get('bozo_exception')}"
    result.title = plain_text(str(parsed.get("feed", {}).get("title") or ""), 300)
    seen: set[str] = set()
    for entry in entries:
        values = _entry_values(entry, language, languages)
        if values is None or values["url"] in seen:
            result.skipped += 1
            continue
        seen.add(values["url"])
        article = session.scalar(select(Article).where(Article.url == values["url"]))
        if article is None:
            session.add(Article(**values, feed=feed, created_at=now))
            result.created += 1
            continue
        if is_staff_translation_key(article.translation_key):
            values.pop("translation_key")  # a link staff chose outlives the slug rule
        changed = {k: v for k, v in values.items() if _differs(getattr(article, k), v)}
        if changed:
            for name, value in changed.items():
                setattr(article, name, value)
            article.updated_at = now
            result.updated += 1
        else:
            result.unchanged += 1
    session.flush()
    return result


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
            session.commit()
        if results[feed.url].error:
            log.warning("feed %s: %s", feed.url, results[feed.url])
    return results
