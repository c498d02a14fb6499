"""Signed, expiring links that let a donor manage their gifts without a password.

A link carries the donor id and a keyed fingerprint of the address it was sent to, so it
stops working when the donor is erased or the address changes; it expires after
`DONOR_LINK_MAX_AGE_HOURS`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from webapp.core.addresses import email_fingerprint
from webapp.core.tokens import TokenError, TokenSigner
from webapp.donations.models import Donor

PURPOSE = "donor-access"


def donor_access_token(donor: Donor, secret: str, now: datetime) -> str:
    """A token naming `donor` for the self-service pages, made at `now` (the app's clock,
    so tests can move time past its expiry)."""
    fingerprint = email_fingerprint(donor.email, secret)
    return TokenSigner(secret, PURPOSE).dumps([donor.id, fingerprint, int(now.timestamp())])


def manage_url(donor: Donor, *, base_url: str, secret: str, language: str, now: datetime) -> str:
    """The full self-service link for `donor`, opening in `language`."""
    token = donor_access_token(donor, secret, now)
    return f"{base_url.rstrip('/')}/{language}/donate/manage/{token}"


def request_access_url(*, base_url: str, language: str) -> str:
    """The page where a donor asks for a fresh self-service link (never expires)."""
    return f"{base_url.rstrip('/')}/{language}/donate/manage"


def donor_from_token(
    session: Session, token: str, *, secret: str, max_age: timedelta, now: datetime
) -> Donor:
    """The donor a valid token names; raises `TokenError` (expired or invalid) otherwise."""
    payload = TokenSigner(secret, PURPOSE).loads(token)
    if not (
        isinstance(payload, list)
        and len(payload) == 3
        and all(isinstance(part, int) for part in (payload[0], payload[2]))
    ):
        raise TokenError(expired=False)
    issued_at = datetime.fromtimestamp(payload[2], tz=UTC)
    if now - issued_at > max_age:
        raise TokenError(expired=True)
    donor = session.get(Donor, payload[0])
    if donor is None or email_fingerprint(donor.email, secret) != payload[1]:
        raise TokenError(expired=False)
    return donor
