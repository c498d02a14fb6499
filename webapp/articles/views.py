"""The view beacon (`/t/view`) and the public top-reads JSON (`/api/top-reads`)."""

from __future__ import annotations

import base64
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from webapp.articles.reading import get_top_reads, record_view
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
        ):
            session.commit()
    except Exception:  # a beacon never fails the reader's page
        session.rollback()
        current_app.logger.exception("view not counted")


@bp.get("/t/view")
@limiter.exempt
def view_pixel() -> Response:
    """`<img src="/t/view?u=<page URL>">`: counts the view, answers a 1x1 GIF."""
    _count(request.args.get("u", "") or request.referrer or "")
    return Response(PIXEL, mimetype="image/gif", headers=_NO_STORE)


@bp.post("/t/view")
@limiter.exempt
def view_beacon() -> Response:
    """`navigator.sendBeacon("/t/view", location.href)`: the body is the page URL."""
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
