"""The view beacon (`/t/view`) and the public top-reads JSON (`/api/top-reads`)."""

from __future__ import annotations

import base64
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from webapp.articles.reading import VIEWS_PER_ADDRESS, get_top_reads, record_view
from webapp.core.clock import utcnow
from webapp.core.limits import limiter
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


@bp.before_request
def _limit_beacon_body() -> None:
    # Before anything reads the body: Werkzeug then refuses a larger declared length at
    # once and stops a chunked body at the limit, so a huge POST is never read whole.
    if request.endpoint == "articles.view_beacon":
        request.max_content_length = BEACON_MAX_BYTES


@bp.get("/t/view")
@limiter.limit(_view_rate_limit)
def view_pixel() -> Response:
    """`<img src="/t/view?u=<page URL>">`: counts the view, answers a 1x1 GIF."""
    _count(request.args.get("u", "") or request.referrer or "")
    return Response(PIXEL, mimetype="image/gif", headers=_NO_STORE)


@bp.post("/t/view")
@limiter.limit(_view_rate_limit)
def view_beacon() -> Response:
    """`navigator.sendBeacon("/t/view", location.href)`: the body is the page URL."""
    try:
        raw = request.get_data(cache=False)
    except RequestEntityTooLarge:
        return Response(status=413, headers=_NO_STORE)
    body = raw[:2000].decode("utf-8", errors="replace")
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
