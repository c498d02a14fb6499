"""Clicks without tracking people: the digest's signed `/r/<token>` redirect.

A token signs (issue id, link) with the app secret and no timestamp, so every reader of an
issue gets the very same link and nothing in it tells readers apart. Following it adds one
to the (issue, link) counter and answers 302 to the link; nothing about the reader is kept
(no subscriber, address, IP, user agent or cookie). Only what the issue linked to can be a
target: a token that does not verify is a 404, never a redirect.

Only GET counts: mail scanners often probe links with HEAD, which is answered without
counting. Clicks on issues not yet approved (staff previews, test sends) redirect but are
not counted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl, urlencode, urlsplit

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from webapp.core.tokens import StableTokenSigner, TokenError
from webapp.digests.models import CARRYING_STATUSES, DigestIssue, DigestSettings, LinkClick

#: The salt of click tokens (no other link's token verifies as one).
PURPOSE = "digest-click"
#: Longer tokens are refused unread (an article URL is rarely more than a few hundred bytes).
MAX_TOKEN_LENGTH = 4000


class ClickLinkError(Exception):
    """A click token that does not verify or does not carry a web link."""


@dataclass(frozen=True)
class ClickTarget:
    """What a valid click token carries."""

    issue_id: int
    url: str


@dataclass(frozen=True)
class LinkClicks:
    """One link of an issue and how often it was followed."""

    url: str
    #: The link's `utm_content` ("item-3", "support"), "" when it has none.
    content: str
    clicks: int
    first_clicked_at: datetime
    last_clicked_at: datetime


def redirect_is_on(settings: DigestSettings, language: str) -> bool:
    """Whether issues in `language` link through the counting redirect (the default)."""
    return language not in (settings.plain_link_languages or [])


def _is_web_link(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def click_token(secret: str, issue_id: int, url: str) -> str:
    """The token of `url` in issue `issue_id`: the same for every reader."""
    return StableTokenSigner(secret, PURPOSE).dumps({"i": issue_id, "u": url})


def click_url(base_url: str, secret: str, issue_id: int, url: str) -> str:
    """The redirect link for `url` (links that are not http(s) are returned unchanged)."""
    if not _is_web_link(url):
        return url
    link = f"{base_url.rstrip('/')}/r/{click_token(secret, issue_id, url)}"
    # The target's UTM tags are repeated, readable, on the redirect link itself, so the
    # campaign a link belongs to can be seen without decoding the token. The redirect
    # ignores them: the signed URL alone decides where it leads.
    tags = [(k, v) for k, v in parse_qsl(urlsplit(url).query) if k.startswith("utm_")]
    return f"{link}?{urlencode(tags)}" if tags else link


def click_wrapper(base_url: str, secret: str, issue_id: int) -> Callable[[str], str]:
    """A function turning an issue's links into redirect links."""

    def wrap(url: str) -> str:
        return click_url(base_url, secret, issue_id, url)

    return wrap


def resolve_click(secret: str, token: str) -> ClickTarget:
    """The issue and link a token carries; raises `ClickLinkError` for anything else."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise ClickLinkError("too long")
    try:
        payload = StableTokenSigner(secret, PURPOSE).loads(token)
    except TokenError as exc:
        raise ClickLinkError("invalid") from exc
    if not isinstance(payload, dict):
        raise ClickLinkError("invalid")
    issue_id, url = payload.get("i"), payload.get("u")
    if not isinstance(issue_id, int) or isinstance(issue_id, bool) or not isinstance(url, str):
        raise ClickLinkError("invalid")
    # Signed by us, so made from an issue's link; checked again so that a link which was
    # never a web address can never become a redirect.
    if not _is_web_link(url) or any(ch in url for ch in "\\\r\n\t"):
        raise ClickLinkError("not a web link")
    return ClickTarget(issue_id=issue_id, url=url)


def url_hash(url: str) -> str:
    """The key of a link in the counts."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def record_click(session: Session, target: ClickTarget, now: datetime) -> bool:
    """Add one to the target's counter, in one statement that two requests at once cannot
    both miss (insert, or on conflict increment). Issues that are not approved, or no
    longer exist, are not counted: returns whether the click counted. Caller commits."""
    status = session.scalar(select(DigestIssue.status).where(DigestIssue.id == target.issue_id))
    if status is None or status not in CARRYING_STATUSES:
        return False
    values = {
        "issue_id": target.issue_id,
        "url_hash": url_hash(target.url),
        "url": target.url,
        "clicks": 1,
        "first_clicked_at": now,
        "last_clicked_at": now,
    }
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(LinkClick).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[LinkClick.issue_id, LinkClick.url_hash],
        set_={"clicks": LinkClick.clicks + 1, "last_clicked_at": now},
    )
    session.execute(stmt)
    return True


def clicks_per_link(session: Session, issue_id: int) -> list[LinkClicks]:
    """The counted links of an issue, most followed first."""
    rows = session.scalars(
        select(LinkClick)
        .where(LinkClick.issue_id == issue_id)
        .order_by(LinkClick.clicks.desc(), LinkClick.id)
    )
    return [
        LinkClicks(
            url=row.url,
            content=dict(parse_qsl(urlsplit(row.url).query)).get("utm_content", ""),
            clicks=row.clicks,
            first_clicked_at=row.first_clicked_at,
            last_clicked_at=row.last_clicked_at,
        )
        for row in rows
    ]
