"""RFC 8058 one-click unsubscribe: GET shows a page, POST (no cookie, no CSRF) acts."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.subscribers.factories import event_kinds, get_subscriber, make_subscriber, path_of
from webapp.subscribers.links import list_unsubscribe_headers, unsubscribe_url
from webapp.subscribers.models import Subscriber


def unsub_path(app: Flask, subscriber: Subscriber) -> str:
    return path_of(unsubscribe_url(subscriber, "http://localhost", app.config["SECRET_KEY"]))


def test_get_never_changes_anything(app: Flask, client: FlaskClient, db_session: Session) -> None:
    subscriber = make_subscriber(db_session)
    db_session.commit()
    path = unsub_path(app, subscriber)
    for _ in range(3):
        page = client.get(path)
        assert page.status_code == 200
        assert 'name="List-Unsubscribe" value="One-Click"' in page.text
    assert client.head(path).status_code == 200
    assert get_subscriber(db_session, subscriber.email).status == "confirmed"
    assert event_kinds(db_session, subscriber.id) == []


def test_one_click_post_without_cookies(app: Flask, db_session: Session) -> None:
    subscriber = make_subscriber(db_session, language="ru")
    db_session.commit()
    mail_client = app.test_client(use_cookies=False)
    response = mail_client.post(
        unsub_path(app, subscriber),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    gone = get_subscriber(db_session, subscriber.email)
    assert gone.status == "unsubscribed"
    assert '"how": "one_click"' in gone.events[-1].detail


def test_the_pages_button_works_too(app: Flask, client: FlaskClient, db_session: Session) -> None:
    subscriber = make_subscriber(db_session)
    db_session.commit()
    response = client.post(
        unsub_path(app, subscriber), data={"List-Unsubscribe": "One-Click", "from": "page"}
    )
    assert response.status_code == 200
    gone = get_subscriber(db_session, subscriber.email)
    assert gone.status == "unsubscribed"
    assert '"how": "unsubscribe_page"' in gone.events[-1].detail


def test_post_without_the_one_click_body_is_refused(
    app: Flask, client: FlaskClient, db_session: Session
) -> None:
    subscriber = make_subscriber(db_session)
    db_session.commit()
    assert client.post(unsub_path(app, subscriber), data={}).status_code == 400
    assert (
        client.post(unsub_path(app, subscriber), data={"List-Unsubscribe": "Yes"}).status_code
        == 400
    )
    assert get_subscriber(db_session, subscriber.email).status == "confirmed"


def test_pending_and_bounced_people_can_leave_too(
    app: Flask, client: FlaskClient, db_session: Session
) -> None:
    pending = make_subscriber(db_session, status="pending")
    bounced = make_subscriber(db_session, status="bounced")
    db_session.commit()
    for person in (pending, bounced):
        assert (
            client.post(unsub_path(app, person), data={"List-Unsubscribe": "One-Click"}).status_code
            == 200
        )
        assert get_subscriber(db_session, person.email).status == "unsubscribed"


def test_list_unsubscribe_headers_for_bulk_mail(app: Flask, db_session: Session) -> None:
    subscriber = make_subscriber(db_session)
    db_session.commit()
    headers = list_unsubscribe_headers(
        subscriber, "https://news.example.org", "s3cret", mailto="unsubscribe@example.org"
    )
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = headers["List-Unsubscribe"].split(", ")
    assert https.startswith("<https://news.example.org/en/unsubscribe/")
    assert mailto == "<mailto:unsubscribe@example.org?subject=unsubscribe>"
