"""Flask-Limiter, shared by every feature; the key is the client IP (proxy-aware). And the
request-body limits: app-wide `MAX_CONTENT_LENGTH`, smaller or larger ones per view."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, g, request
from flask_limiter import Limiter
from werkzeug.exceptions import RequestEntityTooLarge

from webapp.core.net import client_ip

#: Limits are declared on views; storage comes from RATELIMIT_STORAGE_URI.
limiter = Limiter(key_func=client_ip, default_limits=[], headers_enabled=True)

View = TypeVar("View", bound=Callable[..., Any])

#: The attribute `body_limit` puts on a view: bytes, or the name of a setting holding them.
_BODY_LIMIT = "max_body_bytes"


def body_limit(limit: int | str) -> Callable[[View], View]:
    """Give a view its own request-body limit instead of `MAX_CONTENT_LENGTH`: a number of
    bytes, or the name of the setting that holds it. Put it below the route decorator."""

    def mark(view: View) -> View:
        setattr(view, _BODY_LIMIT, limit)
        return view

    return mark


def has_body_limit(view: Callable[..., Any]) -> bool:
    """True when `body_limit` already gave `view` a limit of its own."""
    return hasattr(view, _BODY_LIMIT)


def init_body_limits(app: Flask) -> None:
    """Install `apply_body_limit`; call it before anything that reads forms is installed."""
    app.before_request(apply_body_limit)

    @app.teardown_request
    def _close_spooled_body(_exc: BaseException | None) -> None:
        spool = g.pop("spooled_body", None)
        if spool is not None:
            spool.close()


def apply_body_limit() -> None:
    """Before any hook or view reads the body (registered before CSRF parses forms): the
    view's own limit replaces `MAX_CONTENT_LENGTH`; a declared length over the limit is
    refused at once (413, nothing read); a chunked body is read, in bounded pieces, up to
    one byte past the limit: more is a 413, less is handed on as usual."""
    view = current_app.view_functions.get(request.endpoint or "")
    limit = getattr(view, _BODY_LIMIT, None)
    if limit is not None:
        request.max_content_length = (
            int(current_app.config[limit]) if isinstance(limit, str) else int(limit)
        )
    max_bytes = request.max_content_length
    if max_bytes is None:
        return
    if request.content_length is not None:
        if request.content_length > max_bytes:
            raise RequestEntityTooLarge()
    elif "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        _spool_chunked_body(max_bytes)


#: Chunked bodies are kept in memory up to this, on disk past it (a large staff upload).
_SPOOL_IN_MEMORY = 1024 * 1024


def _spool_chunked_body(max_bytes: int) -> None:
    # Werkzeug stops reading an unsized body at the limit but says nothing (the view would
    # see it cut short), so it is read here first and refused when there is more.
    source = request.environ["wsgi.input"]
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)  # noqa: SIM115
    kept = 0
    while kept <= max_bytes:
        piece = source.read(min(64 * 1024, max_bytes + 1 - kept))
        if not piece:
            break
        spool.write(piece)
        kept += len(piece)
    if kept > max_bytes:
        spool.close()
        raise RequestEntityTooLarge()
    spool.seek(0)
    request.environ["wsgi.input"] = spool
    g.spooled_body = spool  # closed at the end of the request (a large one is a disk file)
