"""The whole reader journey through the real parts: signup page -> confirmation email on a
real SMTP server -> the link in it -> confirm with a POST -> welcome email -> preferences ->
RFC 8058 one-click unsubscribe from a client with no cookies."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.helpers.html import csrf_token, first_url_containing
from tests.helpers.smtp import SmtpSink
from tests.subscribers.factories import event_kinds, get_subscriber, one_email_to, path_of, sign_up
from webapp.outbox.models import OutboxMessage


def outbox_languages(session: Session, subscriber_id: int) -> list[str]:
    session.expire_all()
    return list(
        session.scalars(
            select(OutboxMessage.language)
            .where(OutboxMessage.subscriber_id == subscriber_id)
            .order_by(OutboxMessage.id)
        )
    )


@pytest.mark.parametrize(("prefix", "language"), [("", "en"), ("/ru", "ru")])
def test_signup_confirm_preferences_unsubscribe(
    app: Flask,
    client: FlaskClient,
    db_session: Session,
    smtp_sink: SmtpSink,
    prefix: str,
    language: str,
) -> None:
    address = f"Reader.{language}@Example.com"
    answer = sign_up(client, address, language=language, prefix=prefix, name="Ann Reader")
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith(f"{prefix}/subscribe/check-your-email")
    assert client.get(answer.headers["Location"]).status_code == 200

    subscriber = get_subscriber(db_session, address)
    assert subscriber is not None and subscriber.status == "pending"
    assert subscriber.email == address.lower() and subscriber.language == language
    assert subscriber.consents[0].ip_hash and subscriber.consents[0].source == "signup_page"

    confirmation = one_email_to(smtp_sink, address.lower())
    # The email was written in the language chosen on the form (catalogues are filled in by
    # the translation pass, so the outbox row's language is what is checked here).
    assert outbox_languages(db_session, subscriber.id) == [language]
    confirm_link = first_url_containing(confirmation.part("text/plain"), "/subscribe/confirm/")
    assert f"/{language}/subscribe/confirm/" in confirm_link

    # Opening the link (as a mail scanner would) changes nothing.
    page = client.get(path_of(confirm_link))
    assert page.status_code == 200
    assert get_subscriber(db_session, address).status == "pending"
    if language == "ru":
        assert 'lang="ru"' in page.text
    confirmed = client.post(path_of(confirm_link), data={"csrf_token": csrf_token(page.text)})
    assert confirmed.status_code == 200
    subscriber = get_subscriber(db_session, address)
    assert subscriber.status == "confirmed" and subscriber.confirmed_at is not None
    assert subscriber.consents[0].confirmed_at is not None

    welcome = one_email_to(smtp_sink, address.lower(), count=2)
    assert outbox_languages(db_session, subscriber.id) == [language, language]
    assert welcome.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = welcome.part("text/plain")
    preferences_link = first_url_containing(text, "/subscription/")
    unsubscribe_link = welcome.message["List-Unsubscribe"].strip("<>").split(">")[0]
    assert f"/{language}/unsubscribe/" in unsubscribe_link

    # Confirming twice is fine and sends nothing more.
    again = client.post(path_of(confirm_link), data={"csrf_token": csrf_token(page.text)})
    assert again.status_code == 200
    assert len(smtp_sink.to(address.lower())) == 2

    # Preferences: add the other language, pause, resume.
    prefs = client.get(path_of(preferences_link))
    assert prefs.status_code == 200
    token = csrf_token(prefs.text)
    saved = client.post(
        path_of(preferences_link),
        data={"csrf_token": token, "action": "save", "languages": ["en", "ru"]},
    )
    assert saved.status_code == 303
    subscriber = get_subscriber(db_session, address)
    assert subscriber.languages == [language, "ru" if language == "en" else "en"]
    client.post(path_of(preferences_link), data={"csrf_token": token, "action": "pause"})
    assert get_subscriber(db_session, address).paused is True
    client.post(path_of(preferences_link), data={"csrf_token": token, "action": "resume"})
    assert get_subscriber(db_session, address).paused is False

    # RFC 8058: a GET shows a page and changes nothing ...
    shown = client.get(path_of(unsubscribe_link))
    assert shown.status_code == 200
    assert get_subscriber(db_session, address).status == "confirmed"
    # ... a cookie-less POST with the one-click body unsubscribes.
    mail_client = app.test_client(use_cookies=False)
    gone = mail_client.post(
        path_of(unsubscribe_link),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert gone.status_code == 200
    subscriber = get_subscriber(db_session, address)
    assert subscriber.status == "unsubscribed" and subscriber.unsubscribed_at is not None
    kinds = event_kinds(db_session, subscriber.id)
    assert kinds[:3] == ["signup", "confirmation_sent", "confirmed"]
    assert kinds[-4:] == ["preferences_changed", "paused", "resumed", "unsubscribed"]
    # Once more is harmless.
    assert (
        mail_client.post(
            path_of(unsubscribe_link), data={"List-Unsubscribe": "One-Click"}
        ).status_code
        == 200
    )
    assert event_kinds(db_session, subscriber.id).count("unsubscribed") == 1
