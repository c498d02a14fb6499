"""Two-factor sign-in with a real authenticator algorithm (pyotp) and the injected clock."""

from __future__ import annotations

import re

import pyotp
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.helpers.html import csrf_token
from tests.staff.factories import DEFAULT_PASSWORD, login, make_staff
from webapp.core.clock import FrozenClock
from webapp.staff.models import AuditLog, StaffUser


def enable_totp(client: FlaskClient, clock: FrozenClock) -> str:
    """Turn TOTP on through the account page; returns the secret."""
    page = client.get("/staff/account")
    client.post("/staff/account/totp/setup", data={"csrf_token": csrf_token(page.text)})
    page = client.get("/staff/account")
    assert "<svg" in page.text and "<script" not in page.text  # QR code inline, server-side
    assert " style=" not in page.text  # CSP forbids inline styles too
    match = re.search(r'<code class="secret">([A-Z2-7]+)</code>', page.text)
    assert match, page.text
    secret = match.group(1)
    wrong = client.post(
        "/staff/account/totp/enable",
        data={"csrf_token": csrf_token(page.text), "totp_code": "000000"},
    )
    assert wrong.status_code == 422
    code = pyotp.TOTP(secret).at(clock.now())
    response = client.post(
        "/staff/account/totp/enable", data={"csrf_token": csrf_token(page.text), "totp_code": code}
    )
    assert response.status_code == 302
    return secret


def sign_out(client: FlaskClient) -> None:
    client.post("/staff/logout", data={"csrf_token": csrf_token(client.get("/staff/").text)})


def password_step(client: FlaskClient, email: str):  # noqa: ANN201
    page = client.get("/staff/login")
    return client.post(
        "/staff/login",
        data={"email": email, "password": DEFAULT_PASSWORD, "csrf_token": csrf_token(page.text)},
    )


def test_enable_then_sign_in_with_code(
    client: FlaskClient, db_session: Session, clock: FrozenClock
) -> None:
    user = make_staff(db_session, email="two@example.org")
    db_session.commit()
    login(client, "two@example.org")
    secret = enable_totp(client, clock)
    db_session.expire_all()
    assert db_session.get(StaffUser, user.id).totp_enabled
    sign_out(client)

    response = password_step(client, "two@example.org")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/staff/login/totp")
    # The password alone signs nobody in.
    assert client.get("/staff/").status_code == 302
    page = client.get("/staff/login/totp")
    assert page.status_code == 200 and 'name="code"' in page.text
    bad = client.post(
        "/staff/login/totp", data={"csrf_token": csrf_token(page.text), "code": "123456"}
    )
    assert bad.status_code == 422
    # The code used to enable cannot be replayed; the next time step's code works.
    same = pyotp.TOTP(secret).at(clock.now())
    replay = client.post(
        "/staff/login/totp", data={"csrf_token": csrf_token(page.text), "code": same}
    )
    assert replay.status_code == 422
    clock.advance(seconds=30)
    good = client.post(
        "/staff/login/totp",
        data={"csrf_token": csrf_token(page.text), "code": pyotp.TOTP(secret).at(clock.now())},
    )
    assert good.status_code == 302 and good.headers["Location"].endswith("/staff/")
    assert client.get("/staff/").status_code == 200
    actions = list(db_session.scalars(select(AuditLog.action).order_by(AuditLog.id)))
    assert actions.count("staff.totp_enabled") == 1
    assert actions[-1] == "staff.login"


def test_second_step_expires_and_cannot_be_reached_directly(
    client: FlaskClient, db_session: Session, clock: FrozenClock
) -> None:
    make_staff(db_session, email="two@example.org")
    db_session.commit()
    assert client.get("/staff/login/totp").status_code == 302
    login(client, "two@example.org")
    enable_totp(client, clock)
    sign_out(client)
    password_step(client, "two@example.org")
    clock.advance(minutes=6)
    response = client.get("/staff/login/totp")
    assert response.status_code == 302 and "/staff/login" in response.headers["Location"]


def test_wrong_codes_lock_the_account(
    client: FlaskClient, db_session: Session, clock: FrozenClock
) -> None:
    make_staff(db_session, email="two@example.org")
    db_session.commit()
    login(client, "two@example.org")
    enable_totp(client, clock)
    sign_out(client)
    clock.advance(seconds=1)
    password_step(client, "two@example.org")
    page = client.get("/staff/login/totp")
    statuses = [
        client.post(
            "/staff/login/totp", data={"csrf_token": csrf_token(page.text), "code": "111111"}
        ).status_code
        for _ in range(5)
    ]
    assert statuses == [422, 422, 422, 422, 429]


def test_disable_needs_a_valid_code(
    client: FlaskClient, db_session: Session, clock: FrozenClock
) -> None:
    user = make_staff(db_session, email="two@example.org")
    db_session.commit()
    login(client, "two@example.org")
    secret = enable_totp(client, clock)
    page = client.get("/staff/account")
    assert "Turn off two-factor sign-in" in page.text
    wrong = client.post(
        "/staff/account/totp/disable",
        data={"csrf_token": csrf_token(page.text), "totp_code": "999999"},
    )
    assert wrong.status_code == 422
    clock.advance(seconds=30)
    ok = client.post(
        "/staff/account/totp/disable",
        data={"csrf_token": csrf_token(page.text), "totp_code": pyotp.TOTP(secret).at(clock.now())},
    )
    assert ok.status_code == 302
    db_session.expire_all()
    refreshed = db_session.get(StaffUser, user.id)
    assert not refreshed.totp_enabled and refreshed.totp_secret is None
    assert "staff.totp_disabled" in db_session.scalars(select(AuditLog.action)).all()
