"""The preferences page behind the signed link: languages, pause, unsubscribe, resubscribe."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.helpers.html import csrf_token
from tests.subscribers.factories import event_kinds, get_subscriber, make_subscriber, path_of
from webapp.subscribers.links import preferences_url
from webapp.subscribers.models import Subscriber


def prefs_path(app: Flask, subscriber: Subscriber) -> str:
    return path_of(preferences_url(subscriber, "http://localhost", app.config["SECRET_KEY"]))


def post(client: FlaskClient, path: str, **data: object):  # noqa: ANN201
    token = csrf_token(client.get(path).text)
    return client.post(path, data={"csrf_token": token, **data})


def test_page_opens_in_the_subscribers_language_and_shows_choices(
    app: Flask, client: FlaskClient, db_session: Session
) -> None:
    subscriber = make_subscriber(db_session, language="ru", languages=["ru", "en"])
    db_session.commit()
    path = prefs_path(app, subscriber)
    assert path.startswith("/ru/subscription/")
    page = client.get(path)
    assert page.status_code == 200
    assert 'lang="ru"' in page.text
    assert 'value="en" checked' in page.text and 'value="ru" checked' in page.text
    assert 'value="pause"' in page.text and 'value="unsubscribe"' in page.text


def test_choose_languages_main_language_follows_the_choice(
    app: Flask, client: FlaskClient, db_session: Session
) -> None:
    subscriber = make_subscriber(db_session, language="en")
    db_session.commit()
    path = prefs_path(app, subscriber)
    assert post(client, path, action="save", languages=["ru"]).status_code == 303
    changed = get_subscriber(db_session, subscriber.email)
    assert changed.language == "ru" and changed.languages == ["ru"]
    page = client.get(path)
    assert "Your language choice is saved." in page.text
    none = post(client, path, action="save")
    assert none.status_code == 422
    assert "Choose at least one language." in none.text
    assert post(client, path, action="save", languages=["xx"]).status_code == 422
    assert get_subscriber(db_session, subscriber.email).languages == ["ru"]


def test_unsubscribe_and_resubscribe_from_the_page(
    app: Flask, client: FlaskClient, db_session: Session
) -> None:
    subscriber = make_subscriber(db_session)
    db_session.commit()
    path = prefs_path(app, subscriber)
    post(client, path, action="unsubscribe")
    assert get_subscriber(db_session, subscriber.email).status == "unsubscribed"
    page = client.get(path)
    assert 'value="resubscribe"' in page.text
    post(client, path, action="resubscribe")
    assert get_subscriber(db_session, subscriber.email).status == "confirmed"
    assert event_kinds(db_session, subscriber.id)[-2:] == ["unsubscribed", "resubscribed"]


def test_resubscribe_lifts_a_bounce_but_not_a_staff_suppression(
    app: Flask, client: FlaskClient, db_session: Session
) -> None:
    bounced = make_subscriber(db_session, status="bounced")
    blocked = make_subscriber(
        db_session, status="unsubscribed", suppressed=True, suppression_reason="staff"
    )
    db_session.commit()
    post(client, prefs_path(app, bounced), action="resubscribe")
    again = get_subscriber(db_session, bounced.email)
    assert again.status == "confirmed" and not again.suppressed
    response = post(client, prefs_path(app, blocked), action="resubscribe")
    assert response.status_code == 303
    assert get_subscriber(db_session, blocked.email).status == "unsubscribed"


def test_unknown_action_and_missing_csrf(
    app: Flask, client: FlaskClient, db_session: Session
) -> None:
    subscriber = make_subscriber(db_session)
    db_session.commit()
    path = prefs_path(app, subscriber)
    assert post(client, path, action="explode").status_code == 422
    assert client.post(path, data={"action": "unsubscribe"}).status_code == 400
    assert get_subscriber(db_session, subscriber.email).status == "confirmed"
