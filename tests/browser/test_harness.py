"""The browser harness itself: the live server is the real app at its own origin, and the
axe check really reports problems (so an empty result on our pages means something)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from flask import url_for
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.browser.support import axe
from tests.helpers.live_server import LiveServer


def test_live_server_is_the_app_at_its_own_origin(
    live_server: LiveServer, db_session: Session
) -> None:
    with urllib.request.urlopen(f"{live_server.url}/healthz", timeout=5) as response:
        assert json.load(response) == {"status": "ok", "database": "ok"}

    app = live_server.app
    assert app.config["BASE_URL"] == live_server.url
    assert app.config["SERVER_NAME"] is None
    with app.test_request_context(base_url=live_server.url):
        assert url_for("site.home", _external=True) == f"{live_server.url}/"
    # Same database as the `app` fixture, so tests can arrange rows for the browser.
    assert db_session.execute(text("SELECT 1")).scalar_one() == 1
    assert str(app.extensions["database"].engine.url) == str(db_session.get_bind().url)


def test_axe_reports_serious_and_critical_violations(page: Any) -> None:
    page.set_content(
        "<!doctype html><html lang='en'><head><title>t</title></head><body><main>"
        "<img src='data:image/gif;base64,R0lGODlhAQABAAAAACw='>"
        "<p style='color:#ddd;background:#fff'>Barely readable text</p>"
        "</main></body></html>"
    )

    found = {violation["id"]: violation["impact"] for violation in axe(page)}

    assert found == {"image-alt": "critical", "color-contrast": "serious"}
