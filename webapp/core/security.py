"""Security headers on every response: CSP without inline scripts, frame-ancestors, HSTS,
and `no-store` on pages that carry a form's tokens; NUL characters refused in requests."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, abort, g, request


def init_app(app: Flask) -> None:
    """Add the security headers after each request."""
    # The donation form answers with a redirect to Stripe Checkout, and browsers apply
    # form-action to that redirect too: allow Stripe, and the emulator when configured.
    targets = ["'self'", "https://checkout.stripe.com", "https://billing.stripe.com"]
    api_base = app.config.get("STRIPE_API_BASE")
    if api_base:
        parts = urlsplit(str(api_base))
        if parts.scheme in ("http", "https") and parts.netloc:
            targets.append(f"{parts.scheme}://{parts.netloc}")
    form_action = " ".join(targets)

    @app.after_request
    def _headers(response: Response) -> Response:
        # Views that may be framed (the embeddable signup form) set g.frame_ancestors.
        frame_ancestors = g.get("frame_ancestors", "'self'")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; "
            "img-src 'self' data: https:; font-src 'self'; connect-src 'self'; "
            f"form-action {form_action}; base-uri 'self'; object-src 'none'; "
            f"frame-ancestors {frame_ancestors}",
        )
        if g.get("csrf_token") and "Cache-Control" not in response.headers:
            # A page with a form carries this visit's tokens (CSRF, the checkout's
            # one-time token): never from a cache, nor the browser's back/forward cache.
            response.headers["Cache-Control"] = "no-store"
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        if frame_ancestors == "'self'":
            response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        if request.is_secure:
            response.headers.setdefault(
                "Strict-Transport-Security", "max-age=31536000; includeSubDomains"
            )
        return response


#: Bodies these endpoints read themselves (raw bytes, a signed payload), never as a form.
_RAW_BODY_ENDPOINTS = frozenset({"articles.view_beacon", "stripe_webhook.stripe_webhook"})


def refuse_nul_characters() -> None:
    """Before each view: a NUL character in the path, the query string or a form field is
    never meant (PostgreSQL cannot even store it): 404 for a path, 400 otherwise, instead of
    a database error later. Registered after CSRF and the upload limits, so the form has been
    parsed under the right size limit."""
    if "\x00" in request.path:
        abort(404)
    if any("\x00" in key or "\x00" in value for key, value in request.args.items(multi=True)):
        abort(400)
    is_form = request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data")
    if request.method == "POST" and is_form and request.endpoint not in _RAW_BODY_ENDPOINTS:
        for key, value in request.form.items(multi=True):
            if "\x00" in key or "\x00" in value:
                abort(400)
