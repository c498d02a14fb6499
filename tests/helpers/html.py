"""Reading pages and emails the way a person would: forms, links, tokens."""

from __future__ import annotations

import re
from html import unescape

_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')
_HREF = re.compile(r'href="([^"]+)"')
_URL = re.compile(r"https?://[^\s\"'<>]+")


def csrf_token(html: str | bytes) -> str:
    """The CSRF token of the first form on the page."""
    text = html.decode() if isinstance(html, bytes) else html
    match = _CSRF.search(text)
    if not match:
        raise AssertionError("no csrf_token on the page")
    return unescape(match.group(1) or match.group(2))


def links(html: str) -> list[str]:
    """Every href on a page or in an HTML email, unescaped."""
    return [unescape(h) for h in _HREF.findall(html)]


def urls_in_text(text: str) -> list[str]:
    """Every http(s) URL in a plain-text body."""
    return _URL.findall(text)


def first_url_containing(text: str, fragment: str) -> str:
    """The first URL in `text` containing `fragment`."""
    for url in urls_in_text(text):
        if fragment in url:
            return url
    raise AssertionError(f"no URL containing {fragment!r} in:\n{text}")
