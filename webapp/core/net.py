"""Request helpers shared by rate limits, consent records and throttling."""

from __future__ import annotations

import hashlib

from flask import current_app, request


def client_ip() -> str:
    """The client's address (first `X-Forwarded-For` hop only when TRUST_PROXY is set)."""
    if current_app.config.get("TRUST_PROXY"):
        forwarded = request.headers.get("X-Forwarded-For", "")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.remote_addr or "unknown"


def hash_ip(ip: str) -> str:
    """A keyed hash of an IP address: lets staff tell signups apart without storing the address."""
    key = current_app.config["SECRET_KEY"].encode()
    return hashlib.blake2b(ip.encode(), key=key[:64], digest_size=16).hexdigest()


def is_safe_redirect(target: str | None) -> bool:
    """True for the app's own absolute paths only (no scheme, no host, no `//`)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return False
    return "\\" not in target and "\n" not in target and "\r" not in target
