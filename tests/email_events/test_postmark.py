"""`POST /email-events/postmark` on the payloads Postmark documents (kept in
tests/fixtures/real/email_events/, see SOURCES.md): each record type does what it should,
the credentials of the webhook URL are required, and repeats change nothing."""

from __future__ import annotations

import base64
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
CREDENTIALS = "postmark-hook:s3cret-pass"


def _basic(credentials: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "EMAIL_EVENTS_POSTMARK_CREDENTIALS": CREDENTIALS}


def _fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((REAL / name).read_text())
    return loaded


def _post(client: FlaskClient, body: Any, headers: dict[str, str] | None = None) -> Any:
    return client.post(
        "/email-events/postmark",
        data=json.dumps(body),
        headers={"Content-Type": "application/json", **(headers or _basic(CREDENTIALS))},
    )


@pytest.mark.parametrize(
    ("fixture", "address", "state", "answer"),
    [
        ("postmark_bounce.json", "bounce@example.com", ("bounced", True, "hard_bounce"), 1),
        (
            "postmark_spam_complaint.json",
            "spam@example.com",
            ("unsubscribed", True, "complaint"),
            1,
        ),
        ("postmark_delivery.json", "recipient@example.com", ("confirmed", False, None), 1),
        (
            "postmark_subscription_change_bounce.json",
            "john@example.com",
            ("bounced", True, "hard_bounce"),
            1,
        ),
        ("postmark_open.json", "recipient@example.com", ("confirmed", False, None), 0),
    ],
)
def test_each_documented_record_does_what_it_says(
    client: FlaskClient,
    db_session: Session,
    fixture: str,
    address: str,
    state: tuple[str, bool, str | None],
    answer: int,
) -> None:
    make_subscriber(db_session, email=address)
    db_session.commit()
    response = _post(client, _fixture(fixture))
    assert response.status_code == 200, response.text
    assert response.json == {"recorded": answer, "repeated": 0, "ignored": 1 - answer}
    assert subscriber_state(db_session, address) == state
    # Postmark retries until it gets a 2xx: the same post again changes nothing.
    assert _post(client, _fixture(fixture)).json == {
        "recorded": 0,
        "repeated": answer,
        "ignored": 1 - answer,
    }
    assert event_rows(db_session) == answer


def test_the_bounce_keeps_postmarks_ids_and_time(client: FlaskClient, db_session: Session) -> None:
    make_subscriber(db_session, email="bounce@example.com")
    db_session.commit()
    _post(client, _fixture("postmark_bounce.json"))
    row = db_session.scalars(select(EmailEvent)).one()
    assert (row.provider, row.event_key, row.message_id) == (
        "postmark",
        "Bounce:901542550",
        "2706ee8a-737c-4285-b032-ccd317af53ed",
    )
    assert row.detail.startswith("smtp;550 5.1.1")


def test_a_reactivation_never_lifts_the_suppression(
    client: FlaskClient, db_session: Session
) -> None:
    make_subscriber(db_session, email="john@example.com")
    db_session.commit()
    _post(client, _fixture("postmark_subscription_change_bounce.json"))
    response = _post(client, _fixture("postmark_resubscribe.json"))
    assert response.json == {"recorded": 0, "repeated": 0, "ignored": 1}
    assert subscriber_state(db_session, "john@example.com") == ("bounced", True, "hard_bounce")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        _basic("postmark-hook:wrong"),
        _basic("other:s3cret-pass"),
        {"Authorization": "Basic not-base64!!"},
        {"Authorization": f"Bearer {CREDENTIALS}"},
    ],
)
def test_wrong_or_missing_credentials_are_refused_with_nothing_written(
    client: FlaskClient, db_session: Session, headers: dict[str, str]
) -> None:
    make_subscriber(db_session, email="bounce@example.com")
    db_session.commit()
    response = _post(client, _fixture("postmark_bounce.json"), headers=headers or {"X": "y"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert event_rows(db_session) == 0
    assert subscriber_state(db_session, "bounce@example.com") == ("confirmed", False, None)


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"Email": "bounce@example.com"},
        {"RecordType": "Bounce", "Type": "HardBounce", "Email": "nobody"},
        {"RecordType": "Bounce", "Type": "HardBounce", "Email": "a@example.com", "BouncedAt": "x"},
    ],
)
def test_a_body_postmark_would_not_send_is_refused(
    client: FlaskClient, db_session: Session, body: Any
) -> None:
    response = _post(client, body)
    assert response.status_code == 400 and response.json["error"]
    assert event_rows(db_session) == 0
