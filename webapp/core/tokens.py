"""Signed, expiring tokens for links in emails (confirm, preferences, unsubscribe, donor login).

Each purpose has its own salt so a token made for one link never works for another.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from itsdangerous import (
    BadData,
    BadSignature,
    SignatureExpired,
    TimestampSigner,
    URLSafeSerializer,
    URLSafeTimedSerializer,
)

_DERIVED_KEYS: dict[tuple[bytes, bytes | None, str, bytes], bytes] = {}


class _KeyCachingSigner(TimestampSigner):
    """itsdangerous derives the HMAC key from secret and salt on every signature; a digest to
    100,000 readers signs two links each, so the derived key is kept (same tokens)."""

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        secret = self.secret_keys[-1] if secret_key is None else _as_bytes(secret_key)
        cache_key = (secret, self.salt, self.key_derivation, self.sep)
        key = _DERIVED_KEYS.get(cache_key)
        if key is None:
            key = super().derive_key(secret_key)
            if len(_DERIVED_KEYS) < 64:
                _DERIVED_KEYS[cache_key] = key
        return key


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


@lru_cache(maxsize=64)
def _serializer_for(secret_key: str, purpose: str) -> URLSafeTimedSerializer:
    # Serializers are stateless once built: one per secret and purpose.
    return URLSafeTimedSerializer(
        secret_key, salt=f"readership.{purpose}", signer=_KeyCachingSigner
    )


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
        return _serializer_for(self.secret_key, self.purpose)

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


@lru_cache(maxsize=16)
def _stable_serializer_for(secret_key: str, purpose: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret_key, salt=f"readership.{purpose}")


@dataclass(frozen=True)
class StableTokenSigner:
    """Like `TokenSigner` but without a timestamp: the same payload always gives the same
    token (a link that must not tell its readers apart), and it never expires."""

    secret_key: str
    purpose: str

    def dumps(self, payload: Any) -> str:
        """A URL-safe token carrying `payload`, the same every time."""
        return str(_stable_serializer_for(self.secret_key, self.purpose).dumps(payload))

    def loads(self, token: str) -> Any:
        """The payload of a valid token; raises `TokenError` when tampered."""
        try:
            return _stable_serializer_for(self.secret_key, self.purpose).loads(token)
        except (BadData, UnicodeError, ValueError) as exc:
            raise TokenError(expired=False) from exc
