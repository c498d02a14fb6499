"""Hostile and malformed input at the second sign-in step: never a 500, never a session."""

from __future__ import annotations

from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from tests.helpers.html import csrf_token
from tests.staff.factories import make_staff
from webapp.staff.auth import PENDING_TOTP_KEY
from webapp.staff.models import LoginFailure, StaffSession, StaffUser

digits_of_every_script = st.text(
    alphabet=st.characters(categories=["Nd", "No", "Zs", "Cc"]), min_size=0, max_size=14
)
codes = st.one_of(
    st.text(max_size=40),
    digits_of_every_script,
    st.sampled_from(
        ["١٢٣٤٥٦", "１２３４５６", "\x00" * 6, "12345\u0666", "0" * 13, " " * 6, "-12345"]
    ),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(code=codes, raw=st.binary(max_size=200))
def test_totp_step_never_500s(app: Flask, db_session: Session, code: str, raw: bytes) -> None:
    user = db_session.scalar(select(StaffUser))
    if user is None:
        user = make_staff(db_session, email="fuzz@example.org")
        user.totp_secret, user.totp_enabled = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", True
        db_session.commit()
    # Failures are counted; start each example unlocked so the code is really checked.
    db_session.execute(delete(LoginFailure))
    db_session.commit()
    client = app.test_client()
    now = app.extensions["clock"].now()
    with client.session_transaction() as cookie:
        cookie[PENDING_TOTP_KEY] = {"uid": user.id, "at": now.timestamp(), "next": "/staff/"}
    token = csrf_token(client.get("/staff/login/totp").text)
    response = client.post("/staff/login/totp", data={"code": code, "csrf_token": token})
    assert response.status_code == 422, (code, response.status_code)
    garbage = client.post(
        "/staff/login/totp", data=raw, content_type="application/x-www-form-urlencoded"
    )
    assert garbage.status_code in (400, 422, 429)
    db_session.expire_all()
    assert db_session.scalar(select(func.count()).select_from(StaffSession)) == 0
