"""`POST /email-events/sendgrid` on SendGrid's documented events (kept in
tests/fixtures/real/email_events/, see SOURCES.md), signed as SendGrid's Signed Event Webhook
signs them, with an ECDSA P-256 key the test makes: bad, missing and replayed-onto-another-
body signatures are refused with nothing written."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.email_events.support import event_rows, subscriber_state
from tests.subscribers.factories import make_subscriber
from webapp.email_events.models import EmailEvent

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real" / "email_events"
KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())


def _public(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "EMAIL_EVENTS_SENDGRID_PUBLIC_KEY": _public(KEY)}


def _signed_headers(
    body: bytes, timestamp: str = "1700000000", key: ec.EllipticCurvePrivateKey = KEY
) -> dict[str, str]:
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
    }


def _post(client: FlaskClient, body: bytes, headers: dict[str, str]) -> Any:
    return client.post(
        "/email-events/sendgrid",
        data=body,
        headers={"Content-Type": "application/json", **headers},
    )


def _events() -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = json.loads((REAL / "sendgrid_events.json").read_text())
    return loaded


def test_a_documented_batch_does_what_each_event_says(
    client: FlaskClient, db_session: Session
) -> None:
    for address in ("recipient@example.com", "noreply@example.com", "unsubscribe@example.com"):
        make_subscriber(db_session, email=address)
    db_session.commit()
    body = json.dumps(_events()).encode()
    response = _post(client, body, _signed_headers(body))
    assert response.status_code == 200, response.text
    # delivered and the hard bounce are recorded; processed, deferred, open, the dropped
    # "Unsubscribed Address" and the dropped "invalid@invalid" (not an address) are not.
    assert response.json == {"recorded": 2, "repeated": 0, "ignored": 5}
    assert subscriber_state(db_session, "noreply@example.com") == ("bounced", True, "hard_bounce")
    assert subscriber_state(db_session, "recipient@example.com") == ("confirmed", False, None)
    assert subscriber_state(db_session, "unsubscribe@example.com") == ("confirmed", False, None)
    keys = set(db_session.scalars(select(EmailEvent.event_key)))
    assert keys == {"nOSv8m0eTQ-vxvwNwt3fZQ", "lC0Rc-FuQmKbnxCWxX1jRQ"}
    # SendGrid retries a batch it got no 2xx for, signed afresh: nothing more happens.
    again = _post(client, body, _signed_headers(body, timestamp="1700000300"))
    assert again.json == {"recorded": 0, "repeated": 2, "ignored": 5}
    assert event_rows(db_session) == 2


@pytest.mark.parametrize(
    ("event", "state"),
    [
        ({"event": "spamreport"}, ("unsubscribed", True, "complaint")),
        ({"event": "dropped", "reason": "Bounced Address"}, ("bounced", True, "hard_bounce")),
        (
            {"event": "dropped", "reason": "Spam Reporting Address"},
            ("unsubscribed", True, "complaint"),
        ),
    ],
)
def test_complaints_and_suppressed_drops(
    client: FlaskClient,
    db_session: Session,
    event: dict[str, Any],
    state: tuple[str, bool, str | None],
) -> None:
    """Shaped like the documented events above (ours: the fixtures hold no spam report)."""
    make_subscriber(db_session, email="reader@example.com")
    db_session.commit()
    item = {"email": "reader@example.com", "timestamp": 1461095250, "sg_event_id": "x1", **event}
    body = json.dumps([item]).encode()
    assert _post(client, body, _signed_headers(body)).json["recorded"] == 1
    assert subscriber_state(db_session, "reader@example.com") == state


def test_three_blocked_bounces_are_three_soft_ones(
    client: FlaskClient, db_session: Session
) -> None:
    make_subscriber(db_session, email="reader@example.com")
    db_session.commit()
    items = [
        {
            "event": "bounce",
            "type": "blocked",
            "email": "reader@example.com",
            "sg_event_id": f"b{n}",
        }
        for n in range(3)
    ]
    body = json.dumps(items).encode()
    assert _post(client, body, _signed_headers(body)).json["recorded"] == 3
    assert subscriber_state(db_session, "reader@example.com") == ("bounced", True, "soft_bounces")


def _bad_headers() -> list[dict[str, str]]:
    body = json.dumps(_events()).encode()
    good = _signed_headers(body)
    return [
        {},
        {**good, "X-Twilio-Email-Event-Webhook-Signature": ""},
        {**good, "X-Twilio-Email-Event-Webhook-Timestamp": ""},
        {**good, "X-Twilio-Email-Event-Webhook-Timestamp": "1700000001"},
        _signed_headers(body, key=OTHER_KEY),
        _signed_headers(b"[]"),
        {**good, "X-Twilio-Email-Event-Webhook-Signature": "not base64 !!"},
    ]


@pytest.mark.parametrize("headers", _bad_headers())
def test_a_bad_or_missing_signature_is_refused_with_nothing_written(
    client: FlaskClient, db_session: Session, headers: dict[str, str]
) -> None:
    make_subscriber(db_session, email="noreply@example.com")
    db_session.commit()
    response = _post(client, json.dumps(_events()).encode(), headers)
    assert response.status_code == 401
    assert event_rows(db_session) == 0
    assert subscriber_state(db_session, "noreply@example.com") == ("confirmed", False, None)


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        b"[]",
        b"[1]",
        b"not json",
        b'[{"event": "bounce", "timestamp": "x", "email": "a@example.com"}]',
    ],
)
def test_a_signed_body_that_is_not_events_is_refused(
    client: FlaskClient, db_session: Session, body: bytes
) -> None:
    response = _post(client, body, _signed_headers(body))
    assert response.status_code == 400 and response.json["error"]
    assert event_rows(db_session) == 0
