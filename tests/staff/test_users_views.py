"""Admin staff management: add, change role, deactivate, reset password; last-admin rules."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.helpers.html import csrf_token
from tests.staff.factories import force_login, login, make_staff
from webapp.staff.models import AuditLog, StaffUser


def admin_client(client: FlaskClient, db_session: Session) -> StaffUser:
    admin = make_staff(db_session, role="admin", email="boss@example.org")
    db_session.commit()
    force_login(client, db_session, admin)
    return admin


def token(client: FlaskClient, url: str = "/staff/users/new") -> str:
    return csrf_token(client.get(url).text)


def test_admin_adds_user_with_temporary_password_shown_once(
    app: Flask, client: FlaskClient, db_session: Session
) -> None:
    admin_client(client, db_session)
    response = client.post(
        "/staff/users/new",
        data={
            "csrf_token": token(client),
            "email": "New@Example.org",
            "name": "Nina",
            "role": "editor",
            "password": "",
        },
    )
    assert response.status_code == 200
    match = re.search(r'id="temporary-password">([^<]+)<', response.text)
    assert match
    password = match.group(1)
    user = db_session.scalars(select(StaffUser).where(StaffUser.email == "new@example.org")).one()
    assert user.role == "editor" and user.name == "Nina"
    assert password not in user.password_hash
    assert password not in client.get(f"/staff/users/{user.id}").text
    newcomer = app.test_client()
    login(newcomer, "new@example.org", password)
    entry = db_session.scalars(select(AuditLog).where(AuditLog.action == "staff.created")).one()
    assert entry.actor_email == "boss@example.org" and entry.target_id == str(user.id)
    assert password not in entry.details


def test_admin_sets_password_and_bad_input_is_refused(
    client: FlaskClient, db_session: Session
) -> None:
    admin_client(client, db_session)
    ok = client.post(
        "/staff/users/new",
        data={
            "csrf_token": token(client),
            "email": "set@example.org",
            "role": "viewer",
            "password": "a long enough password",
        },
    )
    assert ok.status_code == 302
    duplicate = client.post(
        "/staff/users/new",
        data={
            "csrf_token": token(client),
            "email": "SET@example.org",
            "role": "viewer",
            "password": "a long enough password",
        },
    )
    assert duplicate.status_code == 409 and "already exists" in duplicate.text
    short = client.post(
        "/staff/users/new",
        data={
            "csrf_token": token(client),
            "email": "short@example.org",
            "role": "viewer",
            "password": "tooshort",
        },
    )
    bad_role = client.post(
        "/staff/users/new",
        data={"csrf_token": token(client), "email": "r@example.org", "role": "overlord"},
    )
    bad_email = client.post(
        "/staff/users/new",
        data={"csrf_token": token(client), "email": "not-an-address", "role": "viewer"},
    )
    nul_name = client.post(
        "/staff/users/new",
        data={
            "csrf_token": token(client),
            "email": "n@example.org",
            "role": "viewer",
            "name": "a\x00b",
        },
    )
    nul_email = client.post(
        "/staff/users/new",
        data={"csrf_token": token(client), "email": "n\x00@example.org", "role": "viewer"},
    )
    assert short.status_code == bad_role.status_code == bad_email.status_code == 422
    assert nul_name.status_code == nul_email.status_code == 422
    emails = set(db_session.scalars(select(StaffUser.email)))
    assert emails == {"boss@example.org", "set@example.org"}


def test_last_admin_cannot_be_demoted_or_deactivated(
    client: FlaskClient, db_session: Session
) -> None:
    admin = admin_client(client, db_session)
    url = f"/staff/users/{admin.id}"
    demote = client.post(f"{url}/role", data={"csrf_token": token(client, url), "role": "viewer"})
    assert demote.status_code == 409 and "last active admin" in demote.text
    deactivate = client.post(f"{url}/deactivate", data={"csrf_token": token(client, url)})
    assert deactivate.status_code == 409
    db_session.expire_all()
    assert db_session.get(StaffUser, admin.id).role == "admin"
    assert db_session.get(StaffUser, admin.id).active

    second = make_staff(db_session, role="admin", email="deputy@example.org")
    db_session.commit()
    demote = client.post(f"{url}/role", data={"csrf_token": token(client, url), "role": "viewer"})
    assert demote.status_code == 302
    db_session.expire_all()
    assert db_session.get(StaffUser, admin.id).role == "viewer"
    # Now a viewer, the former admin may not manage staff any more.
    assert client.get(f"/staff/users/{second.id}").status_code == 403
    entry = db_session.scalars(
        select(AuditLog).where(AuditLog.action == "staff.role_changed")
    ).one()
    assert '"from": "admin"' in entry.details and '"to": "viewer"' in entry.details


def test_deactivation_revokes_sessions_and_reactivation_restores_sign_in(
    app: Flask, client: FlaskClient, db_session: Session
) -> None:
    admin_client(client, db_session)
    editor = make_staff(db_session, role="editor", email="ed@example.org")
    db_session.commit()
    editor_browser = app.test_client()
    login(editor_browser, "ed@example.org")
    url = f"/staff/users/{editor.id}"
    response = client.post(f"{url}/deactivate", data={"csrf_token": token(client, url)})
    assert response.status_code == 302
    assert editor_browser.get("/staff/").status_code == 302
    page = editor_browser.get("/staff/login")
    refused = editor_browser.post(
        "/staff/login",
        data={
            "csrf_token": csrf_token(page.text),
            "email": "ed@example.org",
            "password": "correct horse battery staple",
        },
    )
    assert refused.status_code == 422
    assert client.get("/staff/users/").status_code == 200
    response = client.post(f"{url}/reactivate", data={"csrf_token": token(client, url)})
    assert response.status_code == 302
    login(editor_browser, "ed@example.org")
    actions = set(db_session.scalars(select(AuditLog.action)))
    assert {"staff.deactivated", "staff.reactivated"} <= actions


def test_reset_password_shows_a_new_one_and_signs_the_user_out(
    app: Flask, client: FlaskClient, db_session: Session
) -> None:
    admin_client(client, db_session)
    editor = make_staff(db_session, role="editor", email="ed@example.org")
    db_session.commit()
    editor_browser = app.test_client()
    login(editor_browser, "ed@example.org")
    url = f"/staff/users/{editor.id}"
    response = client.post(f"{url}/reset-password", data={"csrf_token": token(client, url)})
    password = re.search(r'id="temporary-password">([^<]+)<', response.text).group(1)
    assert editor_browser.get("/staff/").status_code == 302
    login(app.test_client(), "ed@example.org", password)


def test_non_admins_cannot_manage_staff(client: FlaskClient, db_session: Session) -> None:
    editor = make_staff(db_session, role="editor")
    db_session.commit()
    force_login(client, db_session, editor)
    assert client.get("/staff/users/").status_code == 403
    assert client.get("/staff/users/new").status_code == 403
    assert client.get("/staff/audit/").status_code == 403
    assert client.get("/staff/settings/").status_code == 403


def test_unknown_user_is_404(client: FlaskClient, db_session: Session) -> None:
    admin_client(client, db_session)
    assert client.get("/staff/users/999999").status_code == 404
