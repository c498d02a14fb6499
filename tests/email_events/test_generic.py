"""`POST /email-events/generic` and `record_email_events`, through the app and a real
database: off until a token is set, refused without it, every kind applied to the list,
repeats and any order changing nothing more, bad bodies refused with nothing written."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.email_events.support import event_rows, subscriber_state
from tests.subscribers.factories import get_subscriber, make_subscriber
from webapp.db import get_database
from webapp.email_events.models import EmailEvent
from webapp.subscribers.erasure import erase_subscriber
from webapp.subscribers.models import Subscriber

TOKEN = "test-generic-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "EMAIL_EVENTS_GENERIC_TOKEN": TOKEN}


def _post(client: FlaskClient, body: Any, headers: dict[str, str] | None = None) -> Any:
    return client.post(
        "/email-events/generic",
        data=body if isinstance(body, str | bytes) else json.dumps(body),
        headers={"Content-Type": "application/json", **(AUTH if headers is None else headers)},
    )


def _reader(db_session: Session, email: str) -> Subscriber:
    subscriber = make_subscriber(db_session, email=email)
    db_session.commit()
    return subscriber


def test_the_endpoint_is_off_without_a_token(
    app_config: dict[str, Any], db_session: Session
) -> None:
    from webapp import create_app

    app = create_app({**app_config, "EMAIL_EVENTS_GENERIC_TOKEN": None})
    try:
        answer = _post(app.test_client(), {"type": "bounce", "email": "a@example.com"})
        assert answer.status_code == 404
    finally:
        get_database(app).engine.dispose()


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": ""}],
)
def test_a_missing_or_wrong_token_is_refused_with_nothing_written(
    client: FlaskClient, db_session: Session, headers: dict[str, str]
) -> None:
    _reader(db_session, "reader@example.com")
    answer = _post(client, {"type": "bounce", "email": "reader@example.com"}, headers=headers)
    assert answer.status_code == 401
    assert event_rows(db_session) == 0
    assert subscriber_state(db_session, "reader@example.com") == ("confirmed", False, None)


def test_a_hard_bounce_bounces_and_suppresses_and_keeps_no_address(
    client: FlaskClient, db_session: Session
) -> None:
    reader = _reader(db_session, "gone@example.com")
    answer = _post(
        client,
        {
            "type": "bounce",
            "email": "Gone@Example.com",
            "id": "evt-1",
            "message_id": "<abc@test.example>",
            "at": "2026-12-01T10:00:00Z",
            "reason": "550 5.1.1 <gone@example.com>: user unknown",
        },
    )
    assert answer.status_code == 200, answer.text
    assert answer.json == {"recorded": 1, "repeated": 0, "ignored": 0}
    assert subscriber_state(db_session, "gone@example.com") == ("bounced", True, "hard_bounce")
    row = db_session.scalars(select(EmailEvent)).one()
    assert (row.provider, row.event_key, row.kind, row.subscriber_id) == (
        "generic",
        "evt-1",
        "hard_bounce",
        reader.id,
    )
    assert row.message_id == "<abc@test.example>"
    assert "gone@example.com" not in row.detail and "<address>" in row.detail
    assert row.occurred_at.replace(tzinfo=UTC) == datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def test_a_complaint_unsubscribes_and_suppresses(client: FlaskClient, db_session: Session) -> None:
    _reader(db_session, "angry@example.com")
    assert _post(client, {"type": "complaint", "email": "angry@example.com"}).status_code == 200
    assert subscriber_state(db_session, "angry@example.com") == ("unsubscribed", True, "complaint")


def test_three_soft_bounces_suppress_and_two_do_not(
    client: FlaskClient, db_session: Session
) -> None:
    _reader(db_session, "full@example.com")
    for number in (1, 2):
        _post(client, {"type": "soft_bounce", "email": "full@example.com", "id": f"s{number}"})
    assert subscriber_state(db_session, "full@example.com") == ("confirmed", False, None)
    _post(client, {"type": "soft_bounce", "email": "full@example.com", "id": "s3"})
    assert subscriber_state(db_session, "full@example.com") == ("bounced", True, "soft_bounces")


def test_a_repeat_is_recognised_and_changes_nothing_more(
    client: FlaskClient, db_session: Session
) -> None:
    _reader(db_session, "twice@example.com")
    event = {"type": "soft_bounce", "email": "twice@example.com", "reason": "452 mailbox full"}
    assert _post(client, {"events": [event, event]}).json == {
        "recorded": 1,
        "repeated": 1,
        "ignored": 0,
    }
    assert _post(client, event).json == {"recorded": 0, "repeated": 1, "ignored": 0}
    db_session.expire_all()
    subscriber = get_subscriber(db_session, "twice@example.com")
    assert subscriber is not None and subscriber.soft_bounce_count == 1
    assert event_rows(db_session) == 1


def test_a_delivery_after_a_bounce_lifts_nothing(client: FlaskClient, db_session: Session) -> None:
    _reader(db_session, "late@example.com")
    _post(client, {"type": "bounce", "email": "late@example.com", "id": "b"})
    _post(client, {"type": "delivered", "email": "late@example.com", "id": "d"})
    assert subscriber_state(db_session, "late@example.com") == ("bounced", True, "hard_bounce")


def test_unknown_types_and_strangers_are_taken_without_effect(
    client: FlaskClient, db_session: Session
) -> None:
    answer = _post(
        client,
        {
            "events": [
                {"type": "opened", "email": "someone@example.com"},
                {"type": "bounce", "email": "never.subscribed@example.com", "id": "x"},
            ]
        },
    )
    assert answer.json == {"recorded": 1, "repeated": 0, "ignored": 1}
    row = db_session.scalars(select(EmailEvent)).one()
    assert row.subscriber_id is None


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        {"events": []},
        {"events": "bounce"},
        {"events": [{"type": "bounce", "email": "a@example.com"}, "junk"]},
        {"type": "bounce"},
        {"type": "bounce", "email": "not-an-address"},
        {"type": "bounce", "email": "a@example.com", "at": "yesterday"},
        {"type": "bounce", "email": "a@example.com", "reason": {"nested": 1}},
        {"events": [{"type": "bounce", "email": "a@example.com"}] * 1001},
    ],
)
def test_a_bad_body_is_refused_with_a_message_and_nothing_written(
    client: FlaskClient, db_session: Session, body: Any
) -> None:
    _reader(db_session, "a@example.com")
    answer = _post(client, body)
    assert answer.status_code == 400
    assert answer.json and answer.json["error"]
    assert event_rows(db_session) == 0
    assert subscriber_state(db_session, "a@example.com") == ("confirmed", False, None)


def test_erasure_deletes_the_events_about_the_person(
    app: Flask, client: FlaskClient, db_session: Session
) -> None:
    _reader(db_session, "forget@example.com")
    _post(client, {"type": "bounce", "email": "forget@example.com", "id": "b1"})
    subscriber = get_subscriber(db_session, "forget@example.com")
    assert subscriber is not None and event_rows(db_session) == 1
    erase_subscriber(
        db_session,
        subscriber,
        staff=None,
        secret=app.config["SECRET_KEY"],
        now=datetime(2026, 12, 2, tzinfo=UTC),
        ip=None,
    )
    db_session.commit()
    assert event_rows(db_session) == 0


# --- Any order, any repeats: a small model of what must hold --------------------------

ADDRESSES = ["m0@example.com", "m1@example.com", "m2@example.com"]
KINDS = ["bounce", "soft_bounce", "complaint", "delivered"]
EVENTS = st.lists(
    st.tuples(st.sampled_from(ADDRESSES), st.sampled_from(KINDS), st.integers(0, 3)),
    min_size=1,
    max_size=14,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=EVENTS, batch=st.integers(1, 4), data=st.data())
def test_any_order_and_repeats_end_as_the_model_says(
    app: Flask,
    client: FlaskClient,
    db_session: Session,
    history: list[tuple[str, str, int]],
    batch: int,
    data: st.DataObject,
) -> None:
    """Each (address, kind, n) is one distinct event (id built from them). It is posted,
    then the whole history again shuffled with repeats, in batches. Whatever the order:
    every distinct event is recorded once; an address is suppressed exactly when it got a
    hard bounce, a complaint or three distinct soft bounces; nobody is ever unsuppressed."""
    with get_database(app).session() as session:
        session.execute(EmailEvent.__table__.delete())
        session.execute(Subscriber.__table__.delete())
        for address in ADDRESSES:
            make_subscriber(session, email=address)
        session.commit()
    events = [
        {"type": kind, "email": address, "id": f"{address}/{kind}/{n}"}
        for address, kind, n in history
    ]
    replay = data.draw(st.permutations(events + events[: len(events) // 2]))
    suppressed_before: set[str] = set()
    for start in range(0, len(replay), batch):
        assert _post(client, {"events": replay[start : start + batch]}).status_code == 200
        now_suppressed = {a for a in ADDRESSES if subscriber_state(db_session, a)[1]}
        assert suppressed_before <= now_suppressed  # never unsuppressed
        suppressed_before = now_suppressed
    distinct = {(address, kind, n) for address, kind, n in history}
    assert event_rows(db_session) == len(distinct)
    for address in ADDRESSES:
        kinds = [kind for a, kind, _n in distinct if a == address]
        expected = "bounce" in kinds or "complaint" in kinds or kinds.count("soft_bounce") >= 3
        assert subscriber_state(db_session, address)[1] is expected, (address, kinds)
