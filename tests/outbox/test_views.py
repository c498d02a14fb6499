"""The staff mailbox viewer and outbox page, as a signed-in staff member uses them."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from emails.mailbox import LocalMailbox
from tests.helpers.html import csrf_token, links
from tests.helpers.smtp import SmtpSink
from tests.outbox.conftest import queue, reload
from tests.staff.factories import force_login, login, make_staff
from webapp.core.clock import FrozenClock
from webapp.db import get_database
from webapp.outbox.gateway import get_mailer
from webapp.outbox.models import OutboxStatus
from webapp.outbox.services import deliver_pending
from webapp.outbox.views import EMAIL_HTML_CSP


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    """Mail goes to the local mailbox (no SMTP server), cheap password hashing."""
    return {
        **app_config,
        "SMTP_URL": None,
        "ARGON2_TIME_COST": 1,
        "ARGON2_MEMORY_COST": 8192,
    }


@pytest.fixture
def editor(client: FlaskClient, db_session: Session) -> Any:
    """A signed-in admin: only admins read the whole mailbox (other staff see their own
    messages there, see `tests/test_role_surfaces.py`). The name is kept for the tests."""
    user = make_staff(db_session, role="admin", email="editor@test.example")
    db_session.commit()
    force_login(client, db_session, user)
    return user


def deliver_to_mailbox(app: Flask, db_session: Session, clock: FrozenClock, count: int) -> None:
    for index in range(count):
        queue(
            db_session,
            app,
            clock.now(),
            to=f"reader{index}@example.org",
            template="confirm_subscription",
            context={"confirm_url": f"http://localhost/confirm/T{index}?a=1&b=2"},
        )
    deliver_pending(get_database(app), get_mailer(app), clock.now())


def test_list_newest_first_with_paging(
    app: Flask, client: FlaskClient, db_session: Session, clock: FrozenClock, editor: Any
) -> None:
    deliver_to_mailbox(app, db_session, clock, 27)
    first = client.get("/staff/mailbox")
    assert first.status_code == 200
    assert "No SMTP server is set" in first.text
    assert "27 messages" in first.text
    assert first.text.index("reader26@example.org") < first.text.index("reader25@example.org")
    assert "reader1@example.org" not in first.text
    assert "Page 1 of 2" in first.text
    second = client.get("/staff/mailbox?page=2")
    assert "reader0@example.org" in second.text and "reader26@example.org" not in second.text
    for page in ("0", "-3", "999", "abc", "1" * 40):
        assert client.get(f"/staff/mailbox?page={page}").status_code == 200


def test_open_one_message(
    app: Flask, client: FlaskClient, db_session: Session, clock: FrozenClock, editor: Any
) -> None:
    deliver_to_mailbox(app, db_session, clock, 1)
    (key,) = LocalMailbox(app.config["MAILBOX_DIR"]).keys_newest_first()
    listing = client.get("/staff/mailbox")
    assert f"/staff/mailbox/{key}" in links(listing.text)

    page = client.get(f"/staff/mailbox/{key}")
    assert page.status_code == 200
    sandbox = 'sandbox="allow-popups allow-popups-to-escape-sandbox"'
    assert f'<iframe class="email-preview" {sandbox}' in page.text
    assert f'src="/staff/mailbox/{key}/html"' in page.text
    assert "http://localhost/confirm/T0?a=1&amp;b=2" in page.text  # text part, escaped
    assert "Content-Transfer-Encoding" in page.text  # raw source

    html = client.get(f"/staff/mailbox/{key}/html")
    assert html.status_code == 200 and html.mimetype == "text/html"
    assert html.headers["Content-Security-Policy"] == EMAIL_HTML_CSP
    assert html.headers["Content-Security-Policy"].startswith(
        "default-src 'none'; img-src data: https: http:; style-src 'unsafe-inline'"
    )
    assert html.text.startswith("<!DOCTYPE html>")  # standards mode
    assert '<head><base target="_blank">' in html.text
    assert 'href="http://localhost/confirm/T0?a=1&amp;b=2"' in html.text

    raw = client.get(f"/staff/mailbox/{key}/raw")
    assert raw.mimetype == "text/plain"
    assert raw.data.startswith(b"Return-Path: <newsletter@test.example>\r\n")


@pytest.mark.parametrize("key", ["nope", "1.M1P1Q1.host", "..%2F..%2Fetc", "a b", "x" * 300])
def test_unknown_message_is_404(client: FlaskClient, editor: Any, key: str) -> None:
    for suffix in ("", "/html", "/raw"):
        assert client.get(f"/staff/mailbox/{key}{suffix}").status_code == 404


def test_smtp_configured_says_so(
    request: pytest.FixtureRequest, app_config: dict[str, Any], smtp_sink: SmtpSink
) -> None:
    app_config["SMTP_URL"] = smtp_sink.url
    client: FlaskClient = request.getfixturevalue("client")
    request.getfixturevalue("editor")
    page = client.get("/staff/mailbox")
    assert "Mail goes to the SMTP server" in page.text


def test_send_a_test_email_through_the_real_form(
    app: Flask, client: FlaskClient, db_session: Session
) -> None:
    user = make_staff(db_session, role="fundraiser", email="fund@test.example")
    db_session.commit()
    login(client, user.email)
    page = client.get("/staff/mailbox")
    response = client.post("/staff/mailbox/test", data={"csrf_token": csrf_token(page.text)})
    assert response.status_code == 303
    listing = client.get(response.headers["Location"])
    assert "A test email was sent to fund@test.example." in listing.text
    (entry,) = LocalMailbox(app.config["MAILBOX_DIR"]).list().entries
    assert entry.to == "fund@test.example"
    assert entry.subject.startswith("Test email from")


def test_state_changes_need_the_csrf_token(client: FlaskClient, editor: Any) -> None:
    assert client.post("/staff/mailbox/test").status_code == 400
    assert client.post("/staff/outbox/1/retry").status_code == 400


def test_outbox_lists_failures_and_retries_them(
    request: pytest.FixtureRequest,
    app_config: dict[str, Any],
    smtp_sink: SmtpSink,
    clock: FrozenClock,
) -> None:
    app_config["SMTP_URL"] = smtp_sink.url
    app: Flask = request.getfixturevalue("app")
    db_session: Session = request.getfixturevalue("db_session")
    client: FlaskClient = request.getfixturevalue("client")
    request.getfixturevalue("editor")
    smtp_sink.handler.reply_for["gone@example.org"] = "550 5.1.1 no such user"
    failed = queue(db_session, app, clock.now(), to="gone@example.org")
    deliver_pending(get_database(app), get_mailer(app), clock.now())
    waiting = queue(db_session, app, clock.now(), to="waiting@example.org")

    page = client.get("/staff/outbox")
    assert page.status_code == 200
    assert "550 5.1.1 no such user" in page.text and "waiting@example.org" in page.text
    assert "Try again" in page.text
    assert "waiting@example.org" not in client.get("/staff/outbox?status=failed").text
    assert client.get("/staff/outbox?status=bogus&page=x").status_code == 200

    smtp_sink.handler.reply_for.clear()
    response = client.post(
        f"/staff/outbox/{failed.id}/retry", data={"csrf_token": csrf_token(page.text)}
    )
    assert response.status_code == 303
    assert reload(db_session, failed.id).status == OutboxStatus.SENT
    again = client.post(
        f"/staff/outbox/{failed.id}/retry", data={"csrf_token": csrf_token(page.text)}
    )
    assert again.status_code == 409
    missing = client.post("/staff/outbox/999999/retry", data={"csrf_token": csrf_token(page.text)})
    assert missing.status_code == 404
    assert reload(db_session, waiting.id).status == OutboxStatus.PENDING


def test_nav_shows_the_email_section(client: FlaskClient, editor: Any) -> None:
    page = client.get("/staff/outbox")
    assert "/staff/mailbox" in links(page.text)


def test_anonymous_and_viewers_are_kept_out(client: FlaskClient, db_session: Session) -> None:
    for path in ("/staff/mailbox", "/staff/outbox", "/staff/mailbox/x/html"):
        response = client.get(path)
        assert response.status_code == 302 and "/staff/login" in response.headers["Location"]
    viewer = make_staff(db_session, role="viewer")
    db_session.commit()
    force_login(client, db_session, viewer)
    for path in ("/staff/mailbox", "/staff/outbox", "/staff/mailbox/x/raw"):
        assert client.get(path).status_code == 403
