"""The articles feature's public face: the staff list and its changes, feed import, top reads.

Views, jobs and other features (the digest builds on top reads) call these; `feeds`,
`reading` and the rest stay private to the feature. Every function takes the `Session`
(and the time `now` where it writes); none commits: the caller commits, so a change and its
audit row land together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session, object_session

from webapp.articles.feeds import (
    ImportResult,
    add_feed,
    configured_fetcher,
    import_all_feeds,
    import_feed_row,
    is_staff_translation_key,
)
from webapp.articles.models import Article, ArticleViewDay, Feed
from webapp.articles.reading import (
    VIEWS_PER_ADDRESS,
    TopRead,
    get_top_reads,
    purge_raw_views,
    record_view,
)
from webapp.core.clock import as_utc

__all__ = [
    "MAX_ID",
    "PAGE_SIZE",
    "TRANSLATION_CHOICES",
    "VIEWS_PER_ADDRESS",
    "VIEW_DAYS",
    "add_feed",
    "apply_article_values",
    "article_counts",
    "configured_fetcher",
    "current_top_reads",
    "feeds_by_language",
    "get_top_reads",
    "import_all_feeds",
    "import_feed_row",
    "in_utc",
    "is_staff_translation_key",
    "link_translation",
    "linked_translation",
    "list_articles",
    "purge_raw_views",
    "recent_views",
    "record_view",
    "set_top_reads_flag",
    "translation_candidates",
    "translations_of",
    "ArticlePage",
    "ArticleRow",
    "ImportResult",
    "TopRead",
]

#: Articles per page of the list.
PAGE_SIZE = 50
#: The list's views column counts this many days, today included.
VIEW_DAYS = 7
#: How many recent articles the "translation of" menu offers.
TRANSLATION_CHOICES = 200
#: Ids above this cannot exist (and would overflow the database's integer).
MAX_ID = 2**31 - 1


# --- Queries ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArticleRow:
    """One line of the staff list."""

    article: Article
    #: Views over the last `VIEW_DAYS` days.
    views: int
    #: Articles with the same translation key in other languages.
    translations: list[Article]


@dataclass(frozen=True)
class ArticlePage:
    """One page of the filtered list."""

    rows: list[ArticleRow]
    total: int
    page: int
    pages: int


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _newest_first(stmt: Select[tuple[Article]]) -> Select[tuple[Article]]:
    # Articles without a publication date sort by when they were added.
    return stmt.order_by(
        func.coalesce(Article.published_at, Article.created_at).desc(), Article.id.desc()
    )


def _filtered(language: str, q: str) -> Select[tuple[Article]]:
    stmt = select(Article)
    if language:
        stmt = stmt.where(Article.language == language)
    q = q.replace("\x00", "").strip().lower()
    if q:
        stmt = stmt.where(func.lower(Article.title).like(f"%{_escape_like(q)}%", escape="\\"))
    return stmt


def list_articles(
    session: Session, *, language: str = "", q: str = "", page: int = 1, now: datetime
) -> ArticlePage:
    """Articles of `language` (any when empty) whose title contains `q` (case-insensitive),
    newest published first, `PAGE_SIZE` a page, with their recent views and translations."""
    base = _filtered(language, q)
    total = int(session.scalar(select(func.count()).select_from(base.subquery())) or 0)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), pages)
    articles = list(
        session.scalars(_newest_first(base).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE))
    )
    views = recent_views(session, [a.id for a in articles], now=now)
    partners = translations_of(session, articles)
    rows = [ArticleRow(a, views.get(a.id, 0), partners.get(a.id, [])) for a in articles]
    return ArticlePage(rows, total, page, pages)


def recent_views(
    session: Session, article_ids: list[int], *, now: datetime, days: int = VIEW_DAYS
) -> dict[int, int]:
    """Views of each article over the last `days` days (today included)."""
    if not article_ids:
        return {}
    since = now.date() - timedelta(days=days - 1)
    rows = session.execute(
        select(ArticleViewDay.article_id, func.sum(ArticleViewDay.views))
        .where(ArticleViewDay.article_id.in_(article_ids), ArticleViewDay.day >= since)
        .group_by(ArticleViewDay.article_id)
    )
    return {int(article_id): int(total or 0) for article_id, total in rows}


def translations_of(session: Session, articles: list[Article]) -> dict[int, list[Article]]:
    """For each article, the articles sharing its translation key in other languages."""
    keys = {a.translation_key for a in articles if a.translation_key}
    if not keys:
        return {}
    by_key: dict[str, list[Article]] = {}
    for other in session.scalars(
        select(Article)
        .where(Article.translation_key.in_(keys))
        .order_by(Article.language, Article.id)
    ):
        by_key.setdefault(other.translation_key, []).append(other)
    return {
        a.id: [o for o in by_key.get(a.translation_key, []) if o.language != a.language]
        for a in articles
        if a.translation_key
    }


def linked_translation(session: Session, article: Article) -> Article | None:
    """The article's translation (the first one, when there are several), or None."""
    if not article.translation_key:
        return None
    return session.scalar(
        select(Article)
        .where(
            Article.translation_key == article.translation_key,
            Article.language != article.language,
            Article.id != article.id,
        )
        .order_by(Article.language, Article.id)
        .limit(1)
    )


def translation_candidates(
    session: Session, language: str, *, exclude_id: int | None, limit: int = TRANSLATION_CHOICES
) -> list[Article]:
    """The most recent articles in languages other than `language`."""
    stmt = select(Article).where(Article.language != language)
    if exclude_id is not None:
        stmt = stmt.where(Article.id != exclude_id)
    return list(session.scalars(_newest_first(stmt).limit(limit)))


def current_top_reads(
    session: Session, languages: list[str], *, now: datetime, days: int, limit: int
) -> list[tuple[str, list[TopRead]]]:
    """The top reads of each language, as the public site shows them now."""
    return [
        (language, get_top_reads(session, language, now=now, days=days, limit=limit))
        for language in languages
    ]


def feeds_by_language(session: Session, languages: list[str]) -> list[tuple[str, list[Feed]]]:
    """Every feed, grouped by language: the configured languages first (even without feeds),
    then any other language a feed still has."""
    groups: dict[str, list[Feed]] = {language: [] for language in languages}
    for feed in session.scalars(select(Feed).order_by(Feed.language, Feed.url)):
        groups.setdefault(feed.language, []).append(feed)
    return list(groups.items())


def article_counts(session: Session) -> dict[int, int]:
    """How many articles came from each feed."""
    rows = session.execute(
        select(Article.feed_id, func.count())
        .where(Article.feed_id.is_not(None))
        .group_by(Article.feed_id)
    )
    return {int(feed_id): int(count) for feed_id, count in rows}


# --- Changes ------------------------------------------------------------------------------


def in_utc(value: datetime | None) -> datetime | None:
    """A stored time (naive on SQLite) as an aware UTC time; None stays None."""
    return as_utc(value).astimezone(UTC) if value is not None else None


def apply_article_values(article: Article, values: dict[str, Any], now: datetime) -> list[str]:
    """Write `values` onto `article`; returns the names of the fields that changed."""
    changed = []
    for name, value in values.items():
        old = getattr(article, name)
        if isinstance(old, datetime) or name == "published_at":
            differs = in_utc(old) != value
        else:
            differs = old != value
        if differs:
            setattr(article, name, value)
            changed.append(name)
    if changed:
        article.updated_at = now
    return changed


def link_translation(
    article: Article, other: Article | None, *, previously_linked: Article | None
) -> bool:
    """Make `other` the translation of `article` (both get the same key: `other`'s own, or a
    new "staff-<id>"), or with None drop the link (`article` gets its own "article-<id>").
    Both must have ids. Keys chosen here start with "staff-" or "article-", which feed
    imports keep. Returns True when the link changed."""
    if other is None:
        if previously_linked is not None or not article.translation_key:
            article.translation_key = f"article-{article.id}"
        return previously_linked is not None
    if not is_staff_translation_key(other.translation_key):
        # A staff key, so the hourly import keeps the link; the rest of `other`'s group
        # (translations found by the slug rule) moves with it.
        new_key, old_key = f"staff-{other.id}", other.translation_key
        session = object_session(other)
        if old_key and session is not None:
            session.execute(
                update(Article)
                .where(Article.translation_key == old_key)
                .values(translation_key=new_key)
                .execution_options(synchronize_session="fetch")
            )
        other.translation_key = new_key
    if article.translation_key == other.translation_key:
        return False
    article.translation_key = other.translation_key
    return True


def set_top_reads_flag(article: Article, action: str, now: datetime) -> bool:
    """Pin, unpin, exclude or include; pinning un-excludes and excluding unpins. Returns
    True when something changed."""
    before = (article.pinned_in_top_reads, article.excluded_from_top_reads)
    pinned, excluded = before
    if action == "pin":
        pinned, excluded = True, False
    elif action == "unpin":
        pinned = False
    elif action == "exclude":
        pinned, excluded = False, True
    elif action == "include":
        excluded = False
    else:
        raise ValueError(f"unknown action {action!r}")
    if (pinned, excluded) == before:
        return False
    article.pinned_in_top_reads, article.excluded_from_top_reads = pinned, excluded
    article.updated_at = now
    return True
