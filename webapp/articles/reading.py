"""Counting views (cookieless, one per visitor, article and day, bots ignored, no personal
data kept) and the top reads built from the daily counts."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp.articles.models import Article, ArticleViewDay, ArticleViewSeen
from webapp.db import begin_writing

#: User agents of crawlers, link previewers, monitors and headless browsers.
_BOT = re.compile(
    r"bot|crawl|spider|slurp|preview|facebookexternalhit|embedly|quora link|whatsapp|"
    r"telegram|skype|discord|monitor|uptime|pingdom|headless|phantom|curl|wget|python-|"
    r"httpclient|java/|go-http|okhttp|axios|node-fetch|lighthouse",
    re.IGNORECASE,
)


def is_bot(user_agent: str) -> bool:
    """True for an empty or a known automated user agent."""
    return not user_agent.strip() or bool(_BOT.search(user_agent))


def canonical_url(url: str) -> str:
    """The page address without query string or fragment (what articles are stored by)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def visitor_hash(secret: str, day: date, ip: str, user_agent: str) -> str:
    """A keyed hash of address and browser, with a key that changes every day."""
    key = hmac.new(secret.encode(), f"views:{day.isoformat()}".encode(), hashlib.sha256).digest()
    return hmac.new(key, f"{ip}\n{user_agent}".encode(), hashlib.sha256).hexdigest()[:32]


#: Views of one article counted per IP address and day, whatever the User-Agent: a household
#: or an office behind one address still counts a few, a script that changes its User-Agent
#: for every request counts no more.
VIEWS_PER_ADDRESS = 3


def record_view(
    session: Session,
    url: str,
    *,
    ip: str,
    user_agent: str,
    secret: str,
    now: datetime,
    per_address: int = VIEWS_PER_ADDRESS,
) -> bool:
    """Count one view of the article at `url`; False when not counted (a bot, an unknown
    page, the same visitor again today, or an address that had `per_address` views of the
    article today already). The caller commits."""
    if is_bot(user_agent):
        return False
    address = canonical_url(url)
    if not address:
        return False
    article_id = session.scalar(select(Article.id).where(Article.url == address))
    if article_id is None:
        return False
    # One real transaction around the savepoints below: on SQLite a savepoint opened outside
    # one is committed when released, which would keep the rows of a view not counted.
    begin_writing(session)
    day = now.date()
    seen = ArticleViewSeen(
        day=day,
        article_id=article_id,
        visitor_hash=visitor_hash(secret, day, ip, user_agent),
    )
    try:
        with session.begin_nested():
            session.add(seen)
    except IntegrityError:
        return False  # this visitor read it today already
    if not _take_address_slot(session, day, article_id, secret, ip, per_address):
        return False  # a new "browser" from an address that has had its share today
    counted = session.execute(
        update(ArticleViewDay)
        .where(ArticleViewDay.article_id == article_id, ArticleViewDay.day == day)
        .values(views=ArticleViewDay.views + 1)
    ).rowcount  # type: ignore[attr-defined]
    if not counted:
        try:
            with session.begin_nested():
                session.add(ArticleViewDay(article_id=article_id, day=day, views=1))
        except IntegrityError:  # another request made the day's row a moment ago
            session.execute(
                update(ArticleViewDay)
                .where(ArticleViewDay.article_id == article_id, ArticleViewDay.day == day)
                .values(views=ArticleViewDay.views + 1)
            )
    return True


def address_group(ip: str) -> str:
    """What counts as one address for the per-address cap: an IPv4 address, or the /64
    network of an IPv6 one (what one household or LAN gets; a client that owns a /64 could
    otherwise take a new address for every request)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _take_address_slot(
    session: Session, day: date, article_id: int, secret: str, ip: str, per_address: int
) -> bool:
    """Claim one of the address's `per_address` counted views of the article today. The
    slots are rows of the same daily-keyed hash table as the visitors (the address group
    alone, with the slot's number), so the claim is atomic (a primary key) and names
    nobody."""
    group = address_group(ip)
    for slot in range(per_address):
        try:
            with session.begin_nested():
                session.add(
                    ArticleViewSeen(
                        day=day,
                        article_id=article_id,
                        visitor_hash=visitor_hash(secret, day, group, f"\0address-slot-{slot}"),
                    )
                )
            return True
        except IntegrityError:
            continue
    return False


def purge_raw_views(session: Session, *, now: datetime, keep_days: int = 2) -> int:
    """Delete the per-visitor rows older than `keep_days` (the daily counts stay)."""
    cutoff = now.date() - timedelta(days=keep_days)
    result = session.execute(delete(ArticleViewSeen).where(ArticleViewSeen.day < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class TopRead:
    """One article in the top reads."""

    article: Article
    views: int
    pinned: bool


def get_top_reads(
    session: Session, language: str, *, now: datetime, days: int = 7, limit: int = 6
) -> list[TopRead]:
    """The most-viewed articles of `language` over the last `days` days (today included),
    staff pins first, exclusions left out."""
    since = now.date() - timedelta(days=days - 1)
    views = (
        select(ArticleViewDay.article_id, func.sum(ArticleViewDay.views).label("views"))
        .where(ArticleViewDay.day >= since)
        .group_by(ArticleViewDay.article_id)
        .subquery()
    )
    total = func.coalesce(views.c.views, 0)
    rows = session.execute(
        select(Article, total)
        .outerjoin(views, views.c.article_id == Article.id)
        .where(
            Article.language == language,
            Article.excluded_from_top_reads.is_(False),
            (Article.pinned_in_top_reads.is_(True)) | (total > 0),
        )
        .order_by(
            Article.pinned_in_top_reads.desc(),
            total.desc(),
            # Undated articles count from their import (NULLs would sort first on
            # PostgreSQL and last on SQLite).
            func.coalesce(Article.published_at, Article.created_at).desc(),
            Article.id.desc(),
        )
        .limit(limit)
    ).all()
    return [
        TopRead(article, int(count), bool(article.pinned_in_top_reads)) for article, count in rows
    ]
