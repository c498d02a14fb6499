"""Public pages of the publication itself: home, health check, theme and logo."""

from __future__ import annotations

from flask import Blueprint, Response, abort, jsonify, redirect, render_template, url_for
from sqlalchemy import text

from webapp.db import get_session
from webapp.i18n import public_route
from webapp.site.services import get_site_settings

bp = Blueprint("site", __name__)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """200 and JSON when the database answers, 503 otherwise."""
    try:
        get_session().execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means "not healthy", never a 500 page
        return jsonify(status="error", database="unreachable", detail=type(exc).__name__), 503
    return jsonify(status="ok", database="ok"), 200


@public_route(bp, "/")
def home() -> str:
    """The reader's landing page: subscribe and support links."""
    return render_template("site/home.html")


@bp.get("/theme.css")
def theme_css() -> Response:
    """The publication's colours as CSS variables (a file, so CSP needs no inline styles)."""
    settings = get_site_settings(get_session())
    css = (
        f":root{{--color-primary:{settings.primary_color};--color-accent:{settings.accent_color};}}"
    )
    response = Response(css, mimetype="text/css")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/logo")
def logo() -> Response:
    """The uploaded logo, or 404 when there is none."""
    settings = get_site_settings(get_session())
    if not settings.logo_data or not settings.logo_mime:
        abort(404)
    response = Response(settings.logo_data, mimetype=settings.logo_mime)
    response.headers["Cache-Control"] = "public, max-age=300"
    if settings.logo_mime == "image/svg+xml":
        # An SVG may carry script; served alone it may run none.
        response.headers["Content-Security-Policy"] = "default-src 'none'"
    return response


@bp.get("/favicon.ico")
def favicon() -> Response:
    """Browsers ask for it; answer with the logo when there is one."""
    return redirect(url_for("static", filename="favicon.svg"), code=301)  # type: ignore[return-value]
