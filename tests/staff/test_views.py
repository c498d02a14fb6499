"""Sign-in through the real pages: success, failure, throttling, rotation, sign-out."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.helpers.html import csrf_token
from tests.staff.factories import DEFAULT_PASSWORD, force_login, login, make_staff
from webapp.core.clock import FrozenClock, as_utc
from webapp.staff.auth import SESSION_KEY
from webapp.staff.models import AuditLog, LoginFailure, StaffSession, StaffUser

WRONG = "not the password at all"


def post_login(
    client: FlaskClient, email: str, password: str, ip: str = "127.0.0.1", next_: str = ""
):  # noqa: ANN201 - a werkzeug TestResponse
    page = client.get("/staff/login", environ_base={"REMOTE_ADDR": ip})
    return client.post(
        "/staff/login",
        data={
            "email": email,
            "password": password,
            "next": next_,
            "csrf_token": csrf_token(page.text),
        },
        environ_base={"REMOTE_ADDR": ip},
    )


def audit_actions(db_session: Session) -> list[str]:
    db_session.expire_all()
    return list(db_session.scalars(select(AuditLog.action).order_by(AuditLog.id)))


def test_login_page_has_the_public_contract_fields(client: FlaskClient) -> None:
    page = client.get("/staff/login")
    assert page.status_code == 200
    assert 'name="email"' in page.text and 'name="password"' in page.text
    assert 'name="csrf_token"' in page.text


def test_login_success_opens_the_dashboard_and_is_audited(
    client: FlaskClient, db_session: Session
) -> None:
    user = make_staff(db_session, role="editor", email="Ed@Example.org")
    db_session.commit()
    response = post_login(client, "  ED@example.ORG ", DEFAULT_PASSWORD)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/staff/")
    dashboard = client.get("/staff/")
    assert dashboard.status_code == 200
    assert "ed@example.org" in dashboard.text
    db_session.expire_all()
    assert db_session.get(StaffUser, user.id).last_login_at is not None
    assert audit_actions(db_session) == ["staff.login"]
    row = db_session.scalars(select(StaffSession)).one()
    # Only a hash of the token is stored.
    with client.session_transaction() as cookie:
        assert cookie[SESSION_KEY] != row.token_hash
        assert len(row.token_hash) == 64


def test_wrong_password_and_unknown_address_get_the_same_answer(
    client: FlaskClient, db_session: Session
) -> None:
    make_staff(db_session, email="known@example.org")
    make_staff(db_session, email="gone@example.org", active=False)
    db_session.commit()
    wrong = post_login(client, "known@example.org", WRONG)
    unknown = post_login(client, "nobody@example.org", WRONG)
    inactive = post_login(client, "gone@example.org", DEFAULT_PASSWORD)
    assert wrong.status_code == unknown.status_code == inactive.status_code == 422
    message = "That email and password do not match an active staff account."
    for response in (wrong, unknown, inactive):
        assert message in response.text
        assert client.get("/staff/").status_code == 302
    # The answers differ only in the echoed address and the CSRF token.
    assert wrong.text.replace("known@", "X@").count("notice--error") == unknown.text.count(
        "notice--error"
    )


def test_login_without_csrf_token_is_400(client: FlaskClient, db_session: Session) -> None:
    make_staff(db_session, email="a@example.org")
    db_session.commit()
    response = client.post(
        "/staff/login", data={"email": "a@example.org", "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 400
    assert client.get("/staff/").status_code == 302


def test_empty_form_is_422_not_500(client: FlaskClient) -> None:
    page = client.get("/staff/login")
    response = client.post("/staff/login", data={"csrf_token": csrf_token(page.text)})
    assert response.status_code == 422


def test_next_is_followed_only_inside_staff(client: FlaskClient, db_session: Session) -> None:
    make_staff(db_session, email="a@example.org")
    db_session.commit()
    response = post_login(client, "a@example.org", DEFAULT_PASSWORD, next_="//evil.example/x")
    assert response.headers["Location"].endswith("/staff/")
    client.post("/staff/logout", data={"csrf_token": csrf_token(client.get("/staff/").text)})
    response = post_login(client, "a@example.org", DEFAULT_PASSWORD, next_="/staff/account")
    assert response.headers["Location"].endswith("/staff/account")


def test_anonymous_staff_page_redirects_to_login_with_next(client: FlaskClient) -> None:
    response = client.get("/staff/account")
    assert response.status_code == 302
    assert "/staff/login?next=/staff/account" in response.headers["Location"]


def test_account_locks_after_five_failures_then_unlocks(
    client: FlaskClient, db_session: Session, clock: FrozenClock
) -> None:
    make_staff(db_session, email="a@example.org")
    db_session.commit()
    statuses = [post_login(client, "a@example.org", WRONG).status_code for _ in range(5)]
    assert statuses == [422, 422, 422, 422, 429]
    # Even the right password is refused while locked, with a clear message.
    locked = post_login(client, "a@example.org", DEFAULT_PASSWORD)
    assert locked.status_code == 429
    assert "locked for 15 minutes" in locked.text
    assert client.get("/staff/").status_code == 302
    # Another IP does not unlock the account.
    assert post_login(client, "a@example.org", DEFAULT_PASSWORD, ip="10.9.9.9").status_code == 429
    assert "staff.login_locked" in audit_actions(db_session)
    clock.advance(minutes=16)
    assert post_login(client, "a@example.org", DEFAULT_PASSWORD).status_code == 302


def test_unknown_address_locks_like_a_known_one(client: FlaskClient) -> None:
    statuses = [post_login(client, "ghost@example.org", WRONG).status_code for _ in range(6)]
    assert statuses == [422, 422, 422, 422, 429, 429]


def test_success_resets_the_account_count(client: FlaskClient, db_session: Session) -> None:
    make_staff(db_session, email="a@example.org")
    db_session.commit()
    for _ in range(4):
        assert post_login(client, "a@example.org", WRONG).status_code == 422
    login(client, "a@example.org")
    client.post("/staff/logout", data={"csrf_token": csrf_token(client.get("/staff/").text)})
    for _ in range(4):
        assert post_login(client, "a@example.org", WRONG).status_code == 422
    login(client, "a@example.org")


def test_ip_gets_429_page_after_twenty_failures(
    client: FlaskClient, db_session: Session, clock: FrozenClock
) -> None:
    make_staff(db_session, email="real@example.org")
    db_session.commit()
    ip = "203.0.113.7"
    # Different addresses each time, so no single account locks first.
    for i in range(19):
        assert post_login(client, f"guess{i}@example.org", WRONG, ip=ip).status_code == 422
    twentieth = post_login(client, "guess19@example.org", WRONG, ip=ip)
    assert twentieth.status_code == 429
    blocked = post_login(client, "real@example.org", DEFAULT_PASSWORD, ip=ip)
    assert blocked.status_code == 429
    assert "Too many failed sign-in attempts from your network" in blocked.text
    assert "<form" in blocked.text  # a real page, not a bare error
    # Another IP is not affected.
    elsewhere = post_login(client, "real@example.org", DEFAULT_PASSWORD, ip="198.51.100.1")
    assert elsewhere.status_code == 302
    assert "staff.login_ip_locked" in audit_actions(db_session)
    clock.advance(minutes=16)
    other = FlaskClient(client.application, client.response_wrapper, use_cookies=True)
    assert post_login(other, "real@example.org", DEFAULT_PASSWORD, ip=ip).status_code == 302


def test_failure_rows_store_no_plain_address_or_ip(
    client: FlaskClient, db_session: Session
) -> None:
    post_login(client, "secret-person@example.org", WRONG, ip="192.0.2.44")
    row = db_session.scalars(select(LoginFailure)).one()
    assert "secret-person" not in row.account_key and "192.0.2.44" not in row.ip_hash


def test_session_id_rotates_on_login_and_old_cookie_is_useless(
    app: Flask, client: FlaskClient, db_session: Session
) -> None:
    make_staff(db_session, email="a@example.org")
    db_session.commit()
    # A cookie planted before sign-in (session fixation) carries a token of the attacker's.
    with client.session_transaction() as cookie:
        cookie[SESSION_KEY] = "planted-by-attacker"
    login(client, "a@example.org")
    with client.session_transaction() as cookie:
        first_token = cookie[SESSION_KEY]
    assert first_token != "planted-by-attacker"
    first_cookie = client.get_cookie("session").value

    # Signing in again on the same browser gives a new token and kills the old one.
    page = client.get("/staff/account")
    response = client.post(
        "/staff/login",
        data={
            "email": "a@example.org",
            "password": DEFAULT_PASSWORD,
            "csrf_token": csrf_token(page.text),
        },
    )
    assert response.status_code == 302
    with client.session_transaction() as cookie:
        assert cookie[SESSION_KEY] != first_token
    assert client.get("/staff/").status_code == 200

    thief = app.test_client()
    thief.set_cookie("session", first_cookie)
    assert thief.get("/staff/").status_code == 302
    assert (
        db_session.scalar(
            select(func.count()).select_from(StaffSession).where(StaffSession.revoked_at.is_(None))
        )
        == 1
    )


def test_logout_is_post_only_and_revokes_the_session(
    app: Flask, client: FlaskClient, db_session: Session
) -> None:
    make_staff(db_session, email="a@example.org")
    db_session.commit()
    login(client, "a@example.org")
    cookie = client.get_cookie("session").value
    assert client.get("/staff/logout").status_code == 405
    assert client.get("/staff/").status_code == 200
    assert client.post("/staff/logout").status_code == 400  # no CSRF token
    response = client.post(
        "/staff/logout", data={"csrf_token": csrf_token(client.get("/staff/").text)}
    )
    assert response.status_code == 302
    assert client.get("/staff/").status_code == 302
    replay = app.test_client()
    replay.set_cookie("session", cookie)
    assert replay.get("/staff/").status_code == 302


def test_sign_out_everywhere_kills_other_browsers_too(
    app: Flask, client: FlaskClient, db_session: Session
) -> None:
    make_staff(db_session, email="a@example.org")
    db_session.commit()
    laptop, phone = client, app.test_client()
    login(laptop, "a@example.org")
    login(phone, "a@example.org")
    assert phone.get("/staff/").status_code == 200
    page = laptop.get("/staff/account")
    assert "Sign out everywhere" in page.text
    response = laptop.post(
        "/staff/account/sign-out-everywhere", data={"csrf_token": csrf_token(page.text)}
    )
    assert response.status_code == 302
    assert phone.get("/staff/").status_code == 302
    assert laptop.get("/staff/").status_code == 302
    assert "staff.signed_out_everywhere" in audit_actions(db_session)


def test_session_expires_and_last_seen_is_touched_at_most_once_a_minute(
    client: FlaskClient, db_session: Session, clock: FrozenClock
) -> None:
    user = make_staff(db_session, email="a@example.org")
    db_session.commit()
    force_login(client, db_session, user)
    start = clock.now()
    clock.advance(seconds=30)
    client.get("/staff/")
    db_session.expire_all()
    row = db_session.scalars(select(StaffSession)).one()
    assert as_utc(row.last_seen_at) == start
    clock.advance(seconds=45)
    client.get("/staff/")
    db_session.expire_all()
    row = db_session.scalars(select(StaffSession)).one()
    assert as_utc(row.last_seen_at) == clock.now()
    clock.advance(hours=12)
    assert client.get("/staff/").status_code == 302


def test_deactivated_user_is_signed_out_at_once(client: FlaskClient, db_session: Session) -> None:
    user = make_staff(db_session, role="viewer", email="v@example.org")
    db_session.commit()
    force_login(client, db_session, user)
    assert client.get("/staff/").status_code == 200
    user.active = False
    db_session.commit()
    assert client.get("/staff/").status_code == 302


def test_change_password_keeps_this_session_and_ends_others(
    app: Flask, client: FlaskClient, db_session: Session
) -> None:
    make_staff(db_session, email="a@example.org")
    db_session.commit()
    other = app.test_client()
    login(client, "a@example.org")
    login(other, "a@example.org")
    page = client.get("/staff/account")
    token = csrf_token(page.text)
    bad = client.post(
        "/staff/account/password",
        data={
            "csrf_token": token,
            "current_password": WRONG,
            "new_password": "a brand new password",
            "confirm_password": "a brand new password",
        },
    )
    assert bad.status_code == 422 and "The current password is not right." in bad.text
    short = client.post(
        "/staff/account/password",
        data={
            "csrf_token": token,
            "current_password": DEFAULT_PASSWORD,
            "new_password": "short",
            "confirm_password": "short",
        },
    )
    assert short.status_code == 422
    ok = client.post(
        "/staff/account/password",
        data={
            "csrf_token": token,
            "current_password": DEFAULT_PASSWORD,
            "new_password": "a brand new password",
            "confirm_password": "a brand new password",
        },
    )
    assert ok.status_code == 302
    assert client.get("/staff/").status_code == 200
    assert other.get("/staff/").status_code == 302
    assert "staff.password_changed" in audit_actions(db_session)
    fresh = app.test_client()
    login(fresh, "a@example.org", "a brand new password")


def test_unmarked_staff_view_fails_closed(app: Flask, client: FlaskClient) -> None:
    def forgotten() -> str:
        return "secret"

    app.add_url_rule("/staff/forgotten", "forgotten", forgotten)
    assert client.get("/staff/forgotten").status_code == 403


def test_nav_shows_only_permitted_sections(client: FlaskClient, db_session: Session) -> None:
    viewer = make_staff(db_session, role="viewer")
    admin = make_staff(db_session, role="admin")
    db_session.commit()
    force_login(client, db_session, viewer)
    page = client.get("/staff/").text
    assert 'href="/staff/settings/"' not in page and 'href="/staff/audit/"' not in page
    force_login(client, db_session, admin)
    page = client.get("/staff/audit/").text
    assert 'href="/staff/settings/"' in page
    assert 'aria-current="page">Audit log' in page
