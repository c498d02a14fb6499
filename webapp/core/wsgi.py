"""WSGI-level care for what a server hands on before Flask sees it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def percent_encode_raw_bytes(query: str) -> str:
    """A query string (latin-1, as WSGI hands it on) with every byte past ASCII written as
    `%XX`, which is what a browser sends. Werkzeug decodes `request.args` as UTF-8 and fails
    on a raw non-UTF-8 byte, while it keeps an invalid `%XX` as it is."""
    if query.isascii():
        return query
    return "".join(char if ord(char) < 128 else f"%{ord(char):02X}" for char in query)


class CleanQueryString:
    """Middleware: the query string of every request as `percent_encode_raw_bytes` makes it,
    so a client that sends raw bytes gets an answer about its input, not a 500."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        query = environ.get("QUERY_STRING")
        if query:
            environ["QUERY_STRING"] = percent_encode_raw_bytes(query)
        return self.app(environ, start_response)
