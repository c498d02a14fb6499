"""Security headers on every response: CSP without inline scripts, frame-ancestors, HSTS."""

from __future__ import annotations

from flask import Flask, Response, g, request


def init_app(app: Flask) -> None:
    """Add the security headers after each request."""

    @app.after_request
    def _headers(response: Response) -> Response:
        # Views that may be framed (the embeddable signup form) set g.frame_ancestors.
        frame_ancestors = g.get("frame_ancestors", "'self'")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; "
            "img-src 'self' data: https:; font-src 'self'; connect-src 'self'; "
            "form-action 'self' https://checkout.stripe.com https://billing.stripe.com "
            "http://127.0.0.1:* http://localhost:*; base-uri 'self'; object-src 'none'; "
            f"frame-ancestors {frame_ancestors}",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        if frame_ancestors == "'self'":
            response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        if request.is_secure:
            response.headers.setdefault(
                "Strict-Transport-Security", "max-age=31536000; includeSubDomains"
            )
        return response
