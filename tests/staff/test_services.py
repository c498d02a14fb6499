"""Staff services called directly: accounts, passwords, throttling, sessions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.staff.factories import make_staff
from webapp.core.clock import FrozenClock
from webapp.staff import services
from webapp.staff.models import StaffSession
from webapp.staff.services import LoginOutcome


def test_create_staff_user_validates(db_session: Session, clock: FrozenClock) -> None:
    user = services.create_staff_user(
        db_session,
        email=" Mixed@Case.ORG ",
        role="Editor",
        password="twelve chars",
        now=clock.now(),
        name=" Nina ",
    )
    assert (user.email, user.role, user.name) == ("mixed@case.org", "editor", "Nina")
    assert user.active
    assert user.password_hash.startswith("$argon2id$")
    with pytest.raises(ValueError, match="already exists"):
        services.create_staff_user(
            db_session, email="MIXED@case.org", role="viewer", password="x" * 12, now=clock.now()
        )
    with pytest.raises(ValueError, match="Unknown role"):
        services.create_staff_user(
            db_session, email="b@case.org", role="root", password="x" * 12, now=clock.now()
        )
    with pytest.raises(ValueError, match="at least 12"):
        services.create_staff_user(
            db_session, email="b@case.org", role="viewer", password="x" * 11, now=clock.now()
        )
    with pytest.raises(ValueError, match="not a valid email"):
        services.create_staff_user(
            db_session, email="b@@case.org", role="viewer", password="x" * 12, now=clock.now()
        )


def test_password_is_rehashed_when_parameters_change(db_session: Session) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    user = make_staff(db_session)
    user.password_hash = weak.hash("an old weak hash")
    assert services.check_password(user, "an old weak hash")
    assert "m=8," not in user.password_hash
    assert not services.password_hasher.check_needs_rehash(user.password_hash)
    assert not services.check_password(user, "wrong")
    assert not services.check_password(user, "\ud800 lone surrogate")
    assert not services.check_password(user, "x" * 5000)


def test_authenticate_outcomes(app: Flask, db_session: Session, clock: FrozenClock) -> None:
    user = make_staff(db_session, email="a@example.org")
    with app.app_context():
        ok = services.authenticate(
            db_session,
            email="A@example.org",
            password="correct horse battery staple",
            ip="1.2.3.4",
            now=clock.now(),
        )
        assert ok.outcome is LoginOutcome.OK and ok.user is user
        user.totp_enabled, user.totp_secret = True, "JBSWY3DPEHPK3PXP"
        second = services.authenticate(
            db_session,
            email="a@example.org",
            password="correct horse battery staple",
            ip="1.2.3.4",
            now=clock.now(),
        )
        assert second.outcome is LoginOutcome.TOTP_REQUIRED
        wrong = services.authenticate(
            db_session, email="a@example.org", password="nope", ip="1.2.3.4", now=clock.now()
        )
        assert wrong == services.LoginResult(LoginOutcome.INVALID)
        assert user.failed_logins == 1


def test_sessions_start_load_revoke(app: Flask, db_session: Session, clock: FrozenClock) -> None:
    user = make_staff(db_session)
    with app.app_context():
        row, token = services.start_session(
            db_session,
            user=user,
            ip="1.2.3.4",
            user_agent="UA" * 500,
            now=clock.now(),
            lifetime=timedelta(hours=1),
        )
    assert len(row.user_agent) == 300 and row.ip_hash and "1.2.3.4" not in row.ip_hash
    assert services.load_session(db_session, token=token, now=clock.now()) is row
    assert services.load_session(db_session, token="x" + token, now=clock.now()) is None
    later = clock.now() + timedelta(hours=2)
    assert services.load_session(db_session, token=token, now=later) is None
    second, token2 = services.start_session(
        db_session, user=user, ip=None, user_agent="", now=clock.now(), replaces=token
    )
    assert services.load_session(db_session, token=token, now=clock.now()) is None
    assert services.revoke_all_sessions(db_session, user=user, now=clock.now()) == 1
    db_session.expire_all()
    assert services.load_session(db_session, token=token2, now=clock.now()) is None


def test_delete_stale_staff_rows(app: Flask, db_session: Session, clock: FrozenClock) -> None:
    user = make_staff(db_session)
    old, _ = services.start_session(
        db_session, user=user, ip=None, user_agent="", now=clock.now() - timedelta(days=40)
    )
    live, _ = services.start_session(db_session, user=user, ip=None, user_agent="", now=clock.now())
    with app.app_context():
        services.authenticate(
            db_session,
            email="x@example.org",
            password="wrong",
            ip="1.2.3.4",
            now=clock.now() - timedelta(days=2),
        )
    db_session.commit()
    assert services.delete_stale_staff_rows(db_session, now=clock.now()) == 2
    db_session.commit()
    assert [s.id for s in db_session.scalars(select(StaffSession))] == [live.id]
    assert old.id != live.id
