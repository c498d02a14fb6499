"""The per-IP limit on signup POSTs (page and embed share it)."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.helpers.html import csrf_token
from tests.subscribers.factories import get_subscriber, sign_up


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    """A tight per-IP limit so the tests reach it quickly."""
    return {**app_config, "SUBSCRIBE_RATE_LIMIT": "3 per minute"}


def test_per_ip_limit_answers_429(client: FlaskClient, db_session: Session) -> None:
    statuses = [
        sign_up(client, f"r{i}@example.com", ip="198.51.100.1").status_code for i in range(3)
    ]
    assert statuses == [303, 303, 303]
    page = client.get("/subscribe", environ_base={"REMOTE_ADDR": "198.51.100.1"})
    blocked = client.post(
        "/subscribe",
        data={"email": "r9@example.com", "language": "en", "csrf_token": csrf_token(page.text)},
        environ_base={"REMOTE_ADDR": "198.51.100.1"},
    )
    assert blocked.status_code == 429
    assert "Too many requests" in blocked.text
    assert get_subscriber(db_session, "r9@example.com") is None
    # Another IP is not affected.
    assert sign_up(client, "r9@example.com", ip="198.51.100.2").status_code == 303


def test_embed_shares_the_same_budget(client: FlaskClient) -> None:
    for i in range(3):
        assert sign_up(client, f"e{i}@example.com", ip="198.51.100.3").status_code == 303
    blocked = client.post(
        "/embed/subscribe",
        data={"email": "e9@example.com", "language": "en"},
        headers={"Origin": "https://example.org"},
        environ_base={"REMOTE_ADDR": "198.51.100.3"},
    )
    assert blocked.status_code == 429
