"""Signed, expiring tokens for links in emails (confirm, preferences, unsubscribe, donor login).

Each purpose has its own salt so a token made for one link never works for another.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer


class TokenError(Exception):
    """A token that cannot be used; `expired` tells an old link from a broken one."""

    def __init__(self, expired: bool) -> None:
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


@dataclass(frozen=True)
class TokenSigner:
    """Makes and checks tokens for one purpose."""

    secret_key: str
    purpose: str

    def _serializer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self.secret_key, salt=f"readership.{self.purpose}")

    def dumps(self, payload: Any) -> str:
        """A URL-safe token carrying `payload`."""
        return self._serializer().dumps(payload)

    def loads(self, token: str, max_age_seconds: int | None = None) -> Any:
        """The payload of a valid token; raises `TokenError` when expired or tampered."""
        try:
            return self._serializer().loads(token, max_age=max_age_seconds)
        except SignatureExpired as exc:
            raise TokenError(expired=True) from exc
        except (BadSignature, UnicodeError, ValueError) as exc:
            raise TokenError(expired=False) from exc
