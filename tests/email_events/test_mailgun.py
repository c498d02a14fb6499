"""`POST /email-events/mailgun` on the payloads of Mailgun's documentation (kept in
tests/fixtures/real/email_events/, see SOURCES.md), each signed here with a signing key the
test makes, as Mailgun signs them: HMAC-SHA256 of timestamp and token."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.email_events.support import event_rows, subscriber_state
from tests.subscribers.factories import make_subscriber
from webapp.email_events.models import EmailEvent

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real" / "email_events"
SIGNING_KEY = "key-test-mailgun-signing-0123456789"


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "EMAIL_EVENTS_MAILGUN_SIGNING_KEY": SIGNING_KEY}


def _signed(name: str, key: str = SIGNING_KEY, token: str = "a" * 50) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((REAL / name).read_text())
    timestamp = str(int(float(body["event-data"].get("timestamp", 1534108637))))
    digest = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    body["signature"] = {"timestamp": timestamp, "token": token, "signature": digest}
    return body


def _post(client: FlaskClient, body: Any) -> Any:
    return client.post(
        "/email-events/mailgun", data=json.dumps(body), content_type="application/json"
    )


@pytest.mark.parametrize(
    ("fixture", "address", "state", "recorded"),
    [
        (
            "mailgun_failed_permanent.json",
            "invalid@example.com",
            ("bounced", True, "hard_bounce"),
            1,
        ),
        (
            "mailgun_complained.json",
            "recipient@example.com",
            ("unsubscribed", True, "complaint"),
            1,
        ),
        ("mailgun_delivered.json", "recipient@example.com", ("confirmed", False, None), 1),
        # Mailgun is still retrying: not a bounce yet.
        (
            "mailgun_failed_temporary.json",
            "undeliverable@nomx.example.com",
            ("confirmed", False, None),
            0,
        ),
    ],
)
def test_each_documented_event_does_what_it_says(
    client: FlaskClient,
    db_session: Session,
    fixture: str,
    address: str,
    state: tuple[str, bool, str | None],
    recorded: int,
) -> None:
    make_subscriber(db_session, email=address)
    db_session.commit()
    response = _post(client, _signed(fixture))
    assert response.status_code == 200, response.text
    assert response.json == {"recorded": recorded, "repeated": 0, "ignored": 1 - recorded}
    assert subscriber_state(db_session, address) == state
    again = _post(client, _signed(fixture, token="b" * 50))  # a retry, signed afresh
    assert again.json == {"recorded": 0, "repeated": recorded, "ignored": 1 - recorded}
    assert event_rows(db_session) == recorded


def test_the_bounce_keeps_the_message_id_and_the_smtp_reply(
    client: FlaskClient, db_session: Session
) -> None:
    make_subscriber(db_session, email="invalid@example.com")
    db_session.commit()
    _post(client, _signed("mailgun_failed_permanent.json"))
    row = db_session.scalars(select(EmailEvent)).one()
    assert row.message_id == "20180812214658.1.0DF563D0B3597700@example.org"
    assert row.detail.startswith("5.1.1 The email account")


def _tampered(body: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    changed["signature"]["timestamp"] = str(int(changed["signature"]["timestamp"]) + 1)
    return changed


@pytest.mark.parametrize(
    "make",
    [
        lambda: json.loads((REAL / "mailgun_failed_permanent.json").read_text()),
        lambda: _signed("mailgun_failed_permanent.json", key="another key"),
        lambda: _tampered(_signed("mailgun_failed_permanent.json")),
        lambda: {**_signed("mailgun_failed_permanent.json"), "signature": "abc"},
        lambda: [1, 2, 3],
    ],
)
def test_a_missing_or_wrong_signature_is_refused_with_nothing_written(
    client: FlaskClient, db_session: Session, make: Any
) -> None:
    make_subscriber(db_session, email="invalid@example.com")
    db_session.commit()
    assert _post(client, make()).status_code == 401
    assert event_rows(db_session) == 0
    assert subscriber_state(db_session, "invalid@example.com") == ("confirmed", False, None)


def test_a_signed_body_that_is_not_an_event_is_refused(
    client: FlaskClient, db_session: Session
) -> None:
    body = _signed("mailgun_failed_permanent.json")
    body["event-data"]["timestamp"] = "soon"
    body["signature"]["timestamp"] = "1534110422"
    digest = hmac.new(
        SIGNING_KEY.encode(), f"1534110422{'a' * 50}".encode(), hashlib.sha256
    ).hexdigest()
    body["signature"]["signature"] = digest
    response = _post(client, body)
    assert response.status_code == 400 and "timestamp" in response.json["error"]
    assert event_rows(db_session) == 0
