"""Flask-Limiter, shared by every feature; the key is the client IP (proxy-aware)."""

from __future__ import annotations

from flask_limiter import Limiter

from webapp.core.net import client_ip

#: Limits are declared on views; storage comes from RATELIMIT_STORAGE_URI.
limiter = Limiter(key_func=client_ip, default_limits=[], headers_enabled=True)
