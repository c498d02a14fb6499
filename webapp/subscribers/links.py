"""Signed links in subscription emails: confirm, preferences and one-click unsubscribe.

Each link carries the subscriber id and a keyed fingerprint of the address it was sent to,
so it stops working when the row is erased or its address changes. Confirm links also carry
the time they were made (by the app's clock, so tests can move time) and expire after
`CONFIRMATION_MAX_AGE_HOURS`; preferences and unsubscribe links do not expire (RFC 8058
links must keep working for as long as the email sits in an inbox).

Links are built from `BASE_URL` with the subscriber's language as a path prefix, so the
page opens in the language the email was written in.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.core.addresses import email_fingerprint
from webapp.core.clock import as_utc
from webapp.core.tokens import TokenError, TokenSigner
from webapp.db import begin_writing, locked
from webapp.subscribers.models import Subscriber


class LinkPurpose(enum.StrEnum):
    """What a signed link is for; each purpose signs with its own salt."""

    CONFIRM = "confirm"
    PREFERENCES = "preferences"
    UNSUBSCRIBE = "unsubscribe"


class LinkProblem(enum.StrEnum):
    """Why a link cannot be used."""

    #: Tampered, truncated or made for another purpose.
    INVALID = "invalid"
    #: Older than the confirmation window (or made before the reader unsubscribed).
    EXPIRED = "expired"
    #: Well signed, but the subscriber is gone (expired signup, erased).
    GONE = "gone"


class LinkError(Exception):
    """A signed link that cannot be used; `problem` says why."""

    def __init__(self, problem: LinkProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


@dataclass(frozen=True)
class LinkTarget:
    """The subscriber a valid link points at, and when the link was made (confirm links)."""

    subscriber: Subscriber
    issued_at: datetime | None


_PATHS = {
    LinkPurpose.CONFIRM: "subscribe/confirm",
    LinkPurpose.PREFERENCES: "subscription",
    LinkPurpose.UNSUBSCRIBE: "unsubscribe",
}


def make_token(
    subscriber: Subscriber, purpose: LinkPurpose, secret: str, now: datetime | None = None
) -> str:
    """A signed token for `subscriber` and `purpose` (confirm tokens need `now`)."""
    payload: dict[str, Any] = {
        "s": subscriber.id,
        "e": email_fingerprint(subscriber.email, secret),
    }
    if purpose == LinkPurpose.CONFIRM:
        if now is None:
            raise ValueError("confirm tokens carry their issue time")
        payload["t"] = int(now.timestamp())
    return TokenSigner(secret, purpose.value).dumps(payload)


def link_url(
    subscriber: Subscriber,
    purpose: LinkPurpose,
    base_url: str,
    secret: str,
    *,
    now: datetime | None = None,
    language: str | None = None,
) -> str:
    """The absolute URL of a signed link, prefixed with the subscriber's language."""
    token = make_token(subscriber, purpose, secret, now)
    lang = language or subscriber.language
    return f"{base_url.rstrip('/')}/{lang}/{_PATHS[purpose]}/{token}"


def confirm_url(subscriber: Subscriber, base_url: str, secret: str, *, now: datetime) -> str:
    """The double opt-in link for the confirmation email (expires)."""
    return link_url(subscriber, LinkPurpose.CONFIRM, base_url, secret, now=now)


def preferences_url(subscriber: Subscriber, base_url: str, secret: str) -> str:
    """The reader's preferences page (language, pause, unsubscribe); does not expire."""
    return link_url(subscriber, LinkPurpose.PREFERENCES, base_url, secret)


def unsubscribe_url(subscriber: Subscriber, base_url: str, secret: str) -> str:
    """The one-click unsubscribe link (RFC 8058 target of `List-Unsubscribe`)."""
    return link_url(subscriber, LinkPurpose.UNSUBSCRIBE, base_url, secret)


def list_unsubscribe_headers(
    subscriber: Subscriber, base_url: str, secret: str, mailto: str | None = None
) -> dict[str, str]:
    """`List-Unsubscribe` and `List-Unsubscribe-Post` headers for a bulk email (RFC 8058).

    `mailto` (an address) adds a mailto alternative for clients that only know that form.
    """
    parts = [f"<{unsubscribe_url(subscriber, base_url, secret)}>"]
    if mailto:
        parts.append(f"<mailto:{mailto}?subject=unsubscribe>")
    return {
        "List-Unsubscribe": ", ".join(parts),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def resolve_link(
    session: Session,
    token: str,
    purpose: LinkPurpose,
    secret: str,
    *,
    now: datetime,
    max_age: timedelta | None = None,
    for_change: bool = False,
) -> LinkTarget:
    """The subscriber a token points at; raises `LinkError` saying why it cannot be used.

    `max_age` applies to confirm links: older links are EXPIRED. A confirm link made before
    the reader last unsubscribed is EXPIRED too, so an old email cannot undo an unsubscribe.
    `for_change` (a link's POST) starts the transaction as a writer and reads the row
    locked, so a signup the clean-up deletes meanwhile is GONE rather than a failed write,
    and a clean-up that comes second sees the change (a confirmed reader is not stale).
    """
    if len(token) > 500:
        raise LinkError(LinkProblem.INVALID)
    try:
        payload = TokenSigner(secret, purpose.value).loads(token)
    except TokenError as exc:
        raise LinkError(LinkProblem.INVALID) from exc
    if not isinstance(payload, dict):
        raise LinkError(LinkProblem.INVALID)
    subscriber_id, fingerprint = payload.get("s"), payload.get("e")
    if not isinstance(subscriber_id, int) or not isinstance(fingerprint, str):
        raise LinkError(LinkProblem.INVALID)
    issued_at: datetime | None = None
    if purpose == LinkPurpose.CONFIRM:
        stamp = payload.get("t")
        if not isinstance(stamp, int):
            raise LinkError(LinkProblem.INVALID)
        issued_at = datetime.fromtimestamp(stamp, UTC)
        if max_age is not None and now - issued_at > max_age:
            raise LinkError(LinkProblem.EXPIRED)
    if for_change:
        begin_writing(session)
        subscriber = locked(session, select(Subscriber).where(Subscriber.id == subscriber_id))
    else:
        subscriber = session.get(Subscriber, subscriber_id)
    if (
        subscriber is None
        or subscriber.erased_at is not None
        or email_fingerprint(subscriber.email, secret) != fingerprint
    ):
        raise LinkError(LinkProblem.GONE)
    if (
        issued_at is not None
        and subscriber.unsubscribed_at is not None
        and issued_at < as_utc(subscriber.unsubscribed_at).replace(microsecond=0)
    ):
        raise LinkError(LinkProblem.EXPIRED)
    return LinkTarget(subscriber=subscriber, issued_at=issued_at)
