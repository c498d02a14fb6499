"""Template globals about the publication, available on every page."""

from __future__ import annotations

from typing import Any

from flask import Flask, g

from webapp.db import get_session
from webapp.site.services import get_site_settings


def init_app(app: Flask) -> None:
    """Expose `site` (the settings row) to every template."""

    @app.context_processor
    def _site() -> dict[str, Any]:
        if "site_settings" not in g:
            g.site_settings = get_site_settings(get_session())
        return {
            "site": g.site_settings,
            "has_page": lambda endpoint: endpoint in app.view_functions,
        }
