"""Hostile and malformed input at the sign-in form: never a 500, never a row half written."""

from __future__ import annotations

from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.helpers.html import csrf_token
from webapp.core.limits import limiter
from webapp.staff.models import AuditLog, StaffSession, StaffUser

text = st.one_of(
    st.text(max_size=300),
    st.sampled_from(["", " ", "a@b", "' OR 1=1 --", "<script>x</script>", "\x00", "é" * 2000]),
)


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    email=text,
    password=text,
    extra=st.dictionaries(st.text(max_size=10), text, max_size=3),
    raw=st.binary(max_size=200),
)
def test_login_never_500s(
    app: Flask, db_session: Session, email: str, password: str, extra: dict[str, str], raw: bytes
) -> None:
    limiter.reset()
    client = app.test_client()
    token = csrf_token(client.get("/staff/login").text)
    form = {**extra, "email": email, "password": password, "csrf_token": token}
    response = client.post("/staff/login", data=form)
    assert response.status_code in (422, 429)
    garbage = client.post(
        "/staff/login", data=raw, content_type="application/x-www-form-urlencoded"
    )
    assert garbage.status_code in (400, 422, 429)
    db_session.expire_all()
    assert db_session.scalar(select(func.count()).select_from(StaffUser)) == 0
    assert db_session.scalar(select(func.count()).select_from(StaffSession)) == 0
    assert (
        db_session.scalar(
            select(func.count()).select_from(AuditLog).where(AuditLog.action == "staff.login")
        )
        == 0
    )
