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


def refuse_nul_in_path() -> None:
    """Before each view: a NUL character in the path is never a page of ours (and PostgreSQL
    cannot even compare it with a stored slug or token): 404 instead of a database error.
    Query strings and form fields keep their own handling (forms clean control characters
    or refuse them with a message)."""
    if "\x00" in request.path:
        abort(404)
