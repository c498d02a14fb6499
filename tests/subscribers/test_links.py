"""Signed links: expired, tampered, for someone gone, made for another purpose."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.helpers.html import csrf_token, first_url_containing
from tests.helpers.smtp import SmtpSink
from tests.subscribers.factories import (
    get_subscriber,
    make_subscriber,
    one_email_to,
    path_of,
    sign_up,
)
from webapp.core.clock import FrozenClock
from webapp.subscribers.links import LinkPurpose, link_url


def confirm_path(client: FlaskClient, smtp_sink: SmtpSink, address: str, **kw: str) -> str:
    sign_up(client, address, **kw)
    text = one_email_to(smtp_sink, address).part("text/plain")
    return path_of(first_url_containing(text, "/subscribe/confirm/"))


def test_expired_confirm_link_gets_a_clear_page_with_a_way_back(
    client: FlaskClient, db_session: Session, smtp_sink: SmtpSink, clock: FrozenClock
) -> None:
    path = confirm_path(client, smtp_sink, "late@example.com")
    clock.advance(hours=73)
    page = client.get(path)
    assert page.status_code == 410
    assert "This link has expired" in page.text
    assert 'href="/en/subscribe"' in page.text or 'href="/subscribe"' in page.text
    token = csrf_token(client.get("/subscribe").text)
    assert client.post(path, data={"csrf_token": token}).status_code == 410
    assert get_subscriber(db_session, "late@example.com").status == "pending"


def test_tampered_links_are_400(
    client: FlaskClient, db_session: Session, smtp_sink: SmtpSink
) -> None:
    path = confirm_path(client, smtp_sink, "t@example.com")
    for broken in (
        path[:-3] + "abc",
        path[:-10],
        "/subscribe/confirm/nonsense",
        "/subscribe/confirm/" + "A" * 600,
    ):
        page = client.get(broken)
        assert page.status_code == 400, broken
        assert "This link is not valid" in page.text
    for broken in ("/subscription/garbage", "/unsubscribe/garbage"):
        assert client.get(broken).status_code == 400
    assert get_subscriber(db_session, "t@example.com").status == "pending"


def test_a_token_for_one_purpose_does_not_open_another(
    app: Flask, client: FlaskClient, db_session: Session, smtp_sink: SmtpSink
) -> None:
    path = confirm_path(client, smtp_sink, "p@example.com")
    token = path.rsplit("/", 1)[1]
    assert client.get(f"/subscription/{token}").status_code == 400
    assert (
        client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"}).status_code
        == 400
    )


def test_link_for_an_erased_or_expired_signup_is_gone(
    app: Flask, client: FlaskClient, db_session: Session
) -> None:
    subscriber = make_subscriber(db_session, email="x@example.com")
    db_session.commit()
    secret = app.config["SECRET_KEY"]
    url = link_url(subscriber, LinkPurpose.PREFERENCES, "http://localhost", secret)
    db_session.delete(subscriber)
    db_session.commit()
    page = client.get(path_of(url))
    assert page.status_code == 410
    assert "no longer works" in page.text


def test_old_confirm_link_cannot_undo_a_later_unsubscribe(
    client: FlaskClient, db_session: Session, smtp_sink: SmtpSink, clock: FrozenClock
) -> None:
    path = confirm_path(client, smtp_sink, "u@example.com")
    page = client.get(path)
    client.post(path, data={"csrf_token": csrf_token(page.text)})
    clock.advance(minutes=5)
    from webapp.subscribers.services import UnsubscribeHow, unsubscribe

    subscriber = get_subscriber(db_session, "u@example.com")
    unsubscribe(db_session, subscriber, how=UnsubscribeHow.PREFERENCES, now=clock.now())
    db_session.commit()
    again = client.get(path)
    assert again.status_code == 410
    assert get_subscriber(db_session, "u@example.com").status == "unsubscribed"


def test_confirm_get_for_a_confirmed_subscriber_says_so(
    client: FlaskClient, db_session: Session, smtp_sink: SmtpSink
) -> None:
    path = confirm_path(client, smtp_sink, "c@example.com", prefix="/ru", language="ru")
    page = client.get(path)
    client.post(path, data={"csrf_token": csrf_token(page.text)})
    shown = client.get(path)
    assert shown.status_code == 200
    assert "/ru/subscription/" in shown.text  # the manage link stays in Russian
