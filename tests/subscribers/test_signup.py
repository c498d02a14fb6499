"""The signup page: one answer for every address, honeypot, rate limits, bad input."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.helpers.html import csrf_token
from tests.helpers.smtp import SmtpSink
from tests.subscribers.factories import (
    event_kinds,
    get_subscriber,
    make_subscriber,
    one_email_to,
    sign_up,
)
from webapp.core.clock import FrozenClock
from webapp.outbox.models import OutboxMessage
from webapp.subscribers.models import ConsentRecord, Subscriber, SubscriberEvent


def count(session: Session, model: Any) -> int:
    session.expire_all()
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_signup_page_has_labelled_fields_a_language_menu_and_a_csrf_token(
    client: FlaskClient,
) -> None:
    page = client.get("/ru/subscribe")
    assert page.status_code == 200
    assert 'name="csrf_token"' in page.text
    for name in ("email", "name", "language"):
        assert f'for="{name}"' in page.text and f'id="{name}"' in page.text
    assert '<option value="ru" selected' in page.text
    assert 'class="hp"' in page.text  # the honeypot is there, hidden from people


def test_the_answer_is_the_same_whether_the_address_is_known_or_not(
    client: FlaskClient, db_session: Session, smtp_sink: SmtpSink
) -> None:
    make_subscriber(db_session, email="pending@example.com", status="pending")
    make_subscriber(db_session, email="confirmed@example.com", status="confirmed")
    make_subscriber(db_session, email="left@example.com", status="unsubscribed")
    db_session.commit()
    answers = {}
    for address in (
        "new@example.com",
        "pending@example.com",
        "confirmed@example.com",
        "left@example.com",
    ):
        response = sign_up(client, address)
        page = client.get(response.headers["Location"])
        answers[address] = (response.status_code, response.headers["Location"], page.text)
    assert len(set(answers.values())) == 1

    # Behind the same answer each got the right email.
    subjects = {a: one_email_to(smtp_sink, a).subject for a in answers}
    assert subjects["new@example.com"].startswith("Confirm")
    assert subjects["pending@example.com"].startswith("Confirm")
    assert subjects["left@example.com"].startswith("Confirm")  # to come back
    assert subjects["confirmed@example.com"].startswith("Your subscription")  # manage link
    # Nobody's status changed just by asking.
    assert get_subscriber(db_session, "left@example.com").status == "unsubscribed"
    assert get_subscriber(db_session, "confirmed@example.com").status == "confirmed"


def test_resubscribing_after_unsubscribe_needs_the_new_confirmation(
    client: FlaskClient, db_session: Session, smtp_sink: SmtpSink
) -> None:
    from tests.helpers.html import first_url_containing
    from tests.subscribers.factories import path_of

    left = make_subscriber(db_session, email="back@example.com", status="unsubscribed")
    db_session.commit()
    sign_up(client, "back@example.com", language="ru")
    link = first_url_containing(
        one_email_to(smtp_sink, "back@example.com").part("text/plain"), "/subscribe/confirm/"
    )
    page = client.get(path_of(link))
    client.post(path_of(link), data={"csrf_token": csrf_token(page.text)})
    subscriber = get_subscriber(db_session, "back@example.com")
    assert subscriber.status == "confirmed"
    assert subscriber.language == "ru"  # the new form's choice applies once confirmed
    assert event_kinds(db_session, left.id)[-1] == "resubscribed"


def test_honeypot_gets_the_same_answer_and_nothing_happens(
    client: FlaskClient, db_session: Session, smtp_sink: SmtpSink
) -> None:
    response = sign_up(client, "bot@example.com", website="http://spam.example")
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/subscribe/check-your-email")
    assert count(db_session, Subscriber) == 0
    assert count(db_session, OutboxMessage) == 0
    assert smtp_sink.messages == []


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("", "Please enter your email address."),
        ("not-an-address", "Please enter a valid email address"),
        ("someone@localhost", "Please enter a valid email address"),
        ("x" * 300 + "@example.com", "That address is too long."),
    ],
)
def test_bad_addresses_are_refused_with_a_linked_message(
    client: FlaskClient, db_session: Session, email: str, message: str
) -> None:
    response = sign_up(client, email)
    assert response.status_code == 422
    assert message in response.text
    assert 'aria-describedby="email-error"' in response.text
    assert 'aria-invalid="true"' in response.text
    assert count(db_session, Subscriber) == 0


def test_unknown_language_is_refused(client: FlaskClient, db_session: Session) -> None:
    response = sign_up(client, "ann@example.com", language="xx")
    assert response.status_code == 422
    assert count(db_session, Subscriber) == 0


def test_post_without_csrf_token_is_refused(client: FlaskClient, db_session: Session) -> None:
    response = client.post("/subscribe", data={"email": "ann@example.com", "language": "en"})
    assert response.status_code == 400
    assert count(db_session, Subscriber) == 0


def test_one_address_from_many_ips_gets_one_email_per_window(
    client: FlaskClient, db_session: Session, smtp_sink: SmtpSink, clock: FrozenClock
) -> None:
    for i in range(8):
        assert sign_up(client, "target@example.com", ip=f"192.0.2.{i + 1}").status_code == 303
    one_email_to(smtp_sink, "target@example.com")
    assert count(db_session, OutboxMessage) == 1
    assert count(db_session, ConsentRecord) == 1  # one consent per email actually sent
    clock.advance(minutes=16)
    sign_up(client, "target@example.com", ip="192.0.2.200")
    one_email_to(smtp_sink, "target@example.com", count=2)
    assert count(db_session, OutboxMessage) == 2
    assert len(smtp_sink.to("target@example.com")) == 2


def test_confirmed_subscribers_asking_again_are_throttled_too(
    client: FlaskClient, db_session: Session, smtp_sink: SmtpSink
) -> None:
    make_subscriber(db_session, email="fan@example.com", status="confirmed")
    db_session.commit()
    for i in range(3):
        sign_up(client, "fan@example.com", ip=f"192.0.2.{i + 1}")
    one_email_to(smtp_sink, "fan@example.com")
    assert count(db_session, OutboxMessage) == 1


def test_suppressed_for_a_complaint_gets_nothing_but_the_same_answer(
    client: FlaskClient, db_session: Session
) -> None:
    make_subscriber(
        db_session,
        email="angry@example.com",
        status="unsubscribed",
        suppressed=True,
        suppression_reason="complaint",
    )
    db_session.commit()
    response = sign_up(client, "angry@example.com")
    assert response.status_code == 303
    assert count(db_session, OutboxMessage) == 0


_texts = st.one_of(
    st.text(max_size=400),
    st.sampled_from(
        [
            "a@b.co",
            "ann@example.com",
            "\x00@example.com",
            "é@пример.рф",
            "<script>@x.com",
            "a" * 5000,
            "'; DROP TABLE subscribers; --",
        ]
    ),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(email=_texts, name=_texts, language=st.one_of(st.sampled_from(["en", "ru"]), _texts))
def test_hostile_input_never_500_and_never_half_written(
    app: Flask, db_session: Session, email: str, name: str, language: str
) -> None:
    client = app.test_client()
    page = client.get("/subscribe", environ_base={"REMOTE_ADDR": "10.9.9.9"})
    with app.app_context():
        from webapp.core.limits import limiter

        limiter.reset()
    before = [count(db_session, model) for model in (Subscriber, SubscriberEvent, ConsentRecord)]
    response = client.post(
        "/subscribe",
        data={
            "email": email,
            "name": name,
            "language": language,
            "csrf_token": csrf_token(page.text),
        },
        environ_base={"REMOTE_ADDR": "10.9.9.9"},
    )
    assert response.status_code in {303, 400, 413, 422}, response.status_code
    after = [count(db_session, model) for model in (Subscriber, SubscriberEvent, ConsentRecord)]
    if response.status_code != 303:
        assert after == before
    else:
        # Rows come whole: a new subscriber with its consent, signup and email events.
        new_subscribers, new_events, new_consents = (
            a - b for a, b in zip(after, before, strict=True)
        )
        assert new_consents >= new_subscribers and new_events >= 2 * new_subscribers


def test_raw_non_utf8_body_is_not_a_500(client: FlaskClient, db_session: Session) -> None:
    page = client.get("/subscribe")
    token = csrf_token(page.text).encode()
    response = client.post(
        "/subscribe",
        data=b"csrf_token=" + token + b"&email=\xff\xfe%FF@example.com&language=en",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code in {400, 422}
    assert count(db_session, Subscriber) == 0


def test_confirmation_email_is_compiled_once_per_language_not_per_signup(
    app: Flask, client: FlaskClient, smtp_sink: SmtpSink
) -> None:
    from tests.helpers.html import first_url_containing
    from webapp.outbox.gateway import get_mailer

    renderer = get_mailer(app).renderer
    sign_up(client, "first@example.com", name="First")
    compiles_after_first = renderer.mjml_compiles
    sign_up(client, "second@example.com", name="Second")
    sign_up(client, "third@example.com")

    assert renderer.mjml_compiles == compiles_after_first
    # Each person still gets their own link, in both parts.
    links = set()
    for address in ("first@example.com", "second@example.com", "third@example.com"):
        message = one_email_to(smtp_sink, address)
        text_link = first_url_containing(message.part("text/plain"), "/subscribe/confirm/")
        assert text_link.replace("&", "&amp;") in message.part("text/html")
        links.add(text_link)
    assert len(links) == 3
