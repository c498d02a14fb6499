"""Staff test data and sign-in helpers, for any feature's tests.

from tests.staff.factories import make_staff, login, force_login

user = make_staff(db_session, role="editor")
db_session.commit()
login(client, user.email)              # through the real form (CSRF, argon2, session)
force_login(client, db_session, user)  # same cookie, skips the form (fast, for access tests)
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.helpers.html import csrf_token
from webapp.staff import services
from webapp.staff.auth import SESSION_KEY
from webapp.staff.models import StaffUser

DEFAULT_PASSWORD = "correct horse battery staple"

_counter = itertools.count(1)
_hash_cache: dict[tuple[str, int, int], str] = {}


def make_staff(
    session: Session,
    role: str = "admin",
    email: str | None = None,
    password: str = DEFAULT_PASSWORD,
    *,
    name: str = "",
    active: bool = True,
    now: datetime | None = None,
) -> StaffUser:
    """A staff user (flushed; commit before using it through the app).

    Hashes of the same password are reused across users, so making many is cheap; each
    still verifies like a real argon2id hash.
    """
    address = email or f"staff{next(_counter)}-{role}@test.example"
    hasher = services.password_hasher
    key = (password, hasher.time_cost, hasher.memory_cost)
    if key not in _hash_cache:
        _hash_cache[key] = hasher.hash(password.encode())
    user = StaffUser(
        email=services.normalise_email(address),
        name=name,
        role=services.validate_role(role).value,
        password_hash=_hash_cache[key],
        totp_enabled=False,
        active=active,
        created_at=now or datetime(2026, 1, 1, tzinfo=UTC),
        failed_logins=0,
    )
    session.add(user)
    session.flush()
    return user


def login(client: FlaskClient, email: str, password: str = DEFAULT_PASSWORD) -> None:
    """Sign in through /staff/login as a person would; asserts it worked (no TOTP)."""
    page = client.get("/staff/login")
    assert page.status_code == 200, page.status_code
    response = client.post(
        "/staff/login",
        data={"email": email, "password": password, "csrf_token": csrf_token(page.text)},
    )
    assert response.status_code == 302, (response.status_code, response.text[:2000])
    assert "/staff/login" not in response.headers["Location"], response.headers["Location"]


def force_login(client: FlaskClient, session: Session, user: StaffUser) -> str:
    """Give `client` a live staff session for `user` without the form; returns the token.

    Uses the same `start_session` service as the sign-in page (so it is audited as one).
    """
    app = client.application
    with app.test_request_context():
        _row, token = services.start_session(
            session, user=user, ip=None, user_agent="test", now=app.extensions["clock"].now()
        )
    session.commit()
    with client.session_transaction() as cookie:
        cookie.clear()
        cookie[SESSION_KEY] = token
    return token
