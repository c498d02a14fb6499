"""Request helpers shared by rate limits, consent records and throttling."""

from __future__ import annotations

import hashlib
import unicodedata
from urllib.parse import unquote

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


#: Longer `next` targets are refused: no path of ours comes near it.
MAX_REDIRECT_LENGTH = 2000
#: Unicode categories a browser or proxy may drop, normalise or read as a separator:
#: controls, format characters (zero-width, bidi), spaces and line/paragraph separators,
#: private-use, surrogates and unassigned code points.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zs", "Zl", "Zp"})
#: How many layers of percent-encoding are looked through.
_DECODE_LAYERS = 3


def has_unsafe_url_characters(text: str) -> bool:
    """True when `text` holds a character that a browser would strip, drop or reinterpret
    before resolving it as a URL: C0 controls, space, DEL, C1 controls, other Unicode spaces
    and format characters, or a backslash (a slash in http(s) URLs)."""
    return any(
        ch == "\\" or ord(ch) <= 0x20 or unicodedata.category(ch) in _UNSAFE_CATEGORIES
        for ch in text
    )


def _is_control(ch: str) -> bool:
    return ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F


def is_safe_redirect(target: str | None) -> bool:
    r"""True for the app's own absolute paths only, read the way a browser reads them.

    A browser resolving a `Location` strips C0 controls and spaces at the ends, removes
    tabs and newlines anywhere and reads a backslash as a slash (WHATWG URL), so
    `/\t/evil.example/` would become `//evil.example/`, another host. Rather than strip and
    guess, a target with any character a browser would change is refused
    (`has_unsafe_url_characters`), as is one that does not start with exactly one `/`.
    The same tricks behind percent-encoding (`/%2F%2Fx`, `/%5Cx`, `/%09/x`), which a proxy
    or a second redirect may decode, are refused too: every decoding must still start with
    one `/` not followed by `/` or `\`, and hold no control character.
    """
    if not target or len(target) > MAX_REDIRECT_LENGTH:
        return False
    if not target.startswith("/") or target.startswith("//"):
        return False
    if has_unsafe_url_characters(target):
        return False
    layer = target
    for _ in range(_DECODE_LAYERS):
        decoded = unquote(layer, errors="replace")
        if decoded == layer:
            return True
        if decoded[1:2] in ("/", "\\") or any(_is_control(ch) for ch in decoded):
            return False
        layer = decoded
    return unquote(layer, errors="replace") == layer  # deeper encoding than any link of ours
