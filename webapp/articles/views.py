"""The view beacon (`/t/view`) and the public top-reads JSON (`/api/top-reads`)."""

from __future__ import annotations

import base64
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge, TooManyRequests

from webapp.articles.services import VIEWS_PER_ADDRESS, get_top_reads, record_view
from webapp.core.clock import utcnow
from webapp.core.limits import body_limit, limiter
from webapp.core.net import client_ip
from webapp.db import get_session
from webapp.site.services import get_site_settings

bp = Blueprint("articles", __name__)

#: A transparent 1x1 GIF for the image form of the beacon.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_NO_STORE = {"Cache-Control": "no-store, max-age=0"}


def _count(url: str) -> None:
    session = get_session()
    try:
        if record_view(
            session,
            url[:2000],
            ip=client_ip(),
            user_agent=request.headers.get("User-Agent", "")[:500],
            secret=current_app.config["SECRET_KEY"],
            now=utcnow(),
            per_address=int(current_app.config.get("VIEWS_PER_ADDRESS", VIEWS_PER_ADDRESS)),
        ):
            session.commit()
    except Exception:  # a beacon never fails the reader's page
        session.rollback()
        current_app.logger.exception("view not counted")


#: The beacon's body is a page address: a couple of KiB is plenty, more is refused unread.
BEACON_MAX_BYTES = 4096


def _view_rate_limit() -> str:
    return str(current_app.config.get("VIEW_RATE_LIMIT", "60 per minute"))


@bp.errorhandler(RequestEntityTooLarge)
@bp.errorhandler(TooManyRequests)
def _compact_error(error: HTTPException) -> Any:
    # A beacon's answer is never shown to anyone, and the top reads are read by scripts:
    # no error page, just the status (the rate limiter adds its Retry-After).
    status = error.code or 400
    if request.endpoint == "articles.top_reads_api":
        return jsonify(error=error.name.lower()), status
    return Response(status=status, headers=_NO_STORE)


@bp.get("/t/view")
@limiter.shared_limit(_view_rate_limit, scope="view-beacon")
def view_pixel() -> Response:
    """`<img src="/t/view?u=<page URL>">`: counts the view, answers a 1x1 GIF."""
    _count(request.args.get("u", "") or request.referrer or "")
    return Response(PIXEL, mimetype="image/gif", headers=_NO_STORE)


@bp.post("/t/view")
@limiter.shared_limit(_view_rate_limit, scope="view-beacon")
@body_limit(BEACON_MAX_BYTES)
def view_beacon() -> Response:
    """`navigator.sendBeacon("/t/view", location.href)`: the body is the page URL (read
    only up to `BEACON_MAX_BYTES`; a larger one is a 413 before or while it is read)."""
    body = request.get_data(cache=False)[:2000].decode("utf-8", errors="replace")
    _count(body.strip() or request.args.get("u", ""))
    return Response(status=204, headers=_NO_STORE)


@bp.get("/api/top-reads")
def top_reads_api() -> Any:
    """The current top reads of a language as JSON, for the site's "Top reads" box."""
    languages = current_app.config["LANGUAGES"]
    language = request.args.get("lang", languages[0])
    if language not in languages:
        return jsonify(error=f"lang must be one of {', '.join(languages)}"), 400
    session = get_session()
    reads = get_top_reads(
        session,
        language,
        now=utcnow(),
        days=int(current_app.config.get("TOP_READS_DAYS", 7)),
        limit=int(current_app.config.get("TOP_READS_COUNT", 6)),
    )
    response = jsonify(
        language=language,
        articles=[
            {
                "url": read.article.url,
                "title": read.article.title,
                "lede": read.article.lede,
                "author": read.article.author,
                "section": read.article.section,
                "image": read.article.image_url or None,
                "published_at": read.article.published_at.isoformat()
                if read.article.published_at
                else None,
                "views": read.views,
                "pinned": read.pinned,
            }
            for read in reads
        ],
    )
    origin = request.headers.get("Origin", "")
    if origin and origin.rstrip("/") in get_site_settings(session).embed_origins():
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
