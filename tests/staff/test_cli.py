"""`readership staff ...` through the real CLI runner."""

from __future__ import annotations

import pyotp
from flask.testing import FlaskCliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.staff.factories import make_staff
from webapp.core.clock import FrozenClock
from webapp.staff import services
from webapp.staff.models import AuditLog, StaffUser


def staff(db_session: Session, email: str) -> StaffUser | None:
    db_session.expire_all()
    return services.get_staff_by_email(db_session, email)


def test_create_with_password(runner: FlaskCliRunner, db_session: Session) -> None:
    result = runner.invoke(
        args=[
            "staff",
            "create",
            "Admin@Example.org",
            "--role",
            "admin",
            "--password",
            "a long enough password",
            "--name",
            "Ada",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "Created admin admin@example.org" in result.output
    user = staff(db_session, "admin@example.org")
    assert user is not None and user.name == "Ada" and user.role == "admin"
    assert services.check_password(user, "a long enough password")
    assert user.password_hash.startswith("$argon2id$")
    entry = db_session.scalars(select(AuditLog)).one()
    assert entry.action == "staff.created" and entry.actor_email == "system"


def test_create_prompts_twice_when_no_password(runner: FlaskCliRunner, db_session: Session) -> None:
    result = runner.invoke(
        args=["staff", "create", "ed@example.org", "--role", "editor"],
        input="typed secret words\ntyped secret words\n",
    )
    assert result.exit_code == 0, result.output
    assert "typed secret words" not in result.output  # hidden input
    assert services.check_password(staff(db_session, "ed@example.org"), "typed secret words")


def test_create_refuses_bad_input_with_non_zero_exit(
    runner: FlaskCliRunner, db_session: Session
) -> None:
    bad_role = runner.invoke(
        args=[
            "staff",
            "create",
            "a@example.org",
            "--role",
            "king",
            "--password",
            "a long enough password",
        ]
    )
    assert bad_role.exit_code != 0 and "Unknown role 'king'" in bad_role.output
    short = runner.invoke(
        args=["staff", "create", "a@example.org", "--role", "viewer", "--password", "short"]
    )
    assert short.exit_code != 0 and "at least 12 characters" in short.output
    bad_email = runner.invoke(
        args=["staff", "create", "nope", "--role", "viewer", "--password", "a long enough password"]
    )
    assert bad_email.exit_code != 0 and "not a valid email address" in bad_email.output
    ok = runner.invoke(
        args=[
            "staff",
            "create",
            "a@example.org",
            "--role",
            "viewer",
            "--password",
            "a long enough password",
        ]
    )
    assert ok.exit_code == 0
    duplicate = runner.invoke(
        args=[
            "staff",
            "create",
            "A@example.org",
            "--role",
            "viewer",
            "--password",
            "a long enough password",
        ]
    )
    assert duplicate.exit_code != 0 and "already exists" in duplicate.output
    db_session.expire_all()
    assert list(db_session.scalars(select(StaffUser.email))) == ["a@example.org"]


def test_list(runner: FlaskCliRunner, db_session: Session) -> None:
    assert "No staff users yet" in runner.invoke(args=["staff", "list"]).output
    make_staff(db_session, role="editor", email="ed@example.org")
    make_staff(db_session, role="viewer", email="old@example.org", active=False)
    db_session.commit()
    output = runner.invoke(args=["staff", "list"]).output
    assert "ed@example.org" in output and "editor" in output
    assert "old@example.org" in output and "inactive" in output


def test_set_password(runner: FlaskCliRunner, db_session: Session) -> None:
    make_staff(db_session, email="ed@example.org")
    db_session.commit()
    result = runner.invoke(
        args=["staff", "set-password", "ED@example.org"],
        input="another fine password\nanother fine password\n",
    )
    assert result.exit_code == 0, result.output
    assert services.check_password(staff(db_session, "ed@example.org"), "another fine password")
    short = runner.invoke(args=["staff", "set-password", "ed@example.org", "--password", "x"])
    assert short.exit_code != 0
    missing = runner.invoke(args=["staff", "set-password", "who@example.org", "--password", "x"])
    assert missing.exit_code != 0 and "No staff user" in missing.output


def test_disable_totp_for_a_lost_phone(
    runner: FlaskCliRunner, db_session: Session, clock: FrozenClock
) -> None:
    user = make_staff(db_session, email="ed@example.org")
    secret = services.begin_totp_enrolment(user)
    assert services.enable_totp(
        db_session, user=user, code=pyotp.TOTP(secret).at(clock.now()), now=clock.now()
    )
    db_session.commit()
    result = runner.invoke(args=["staff", "disable-totp", "ed@example.org"])
    assert result.exit_code == 0, result.output
    user = staff(db_session, "ed@example.org")
    assert not user.totp_enabled and user.totp_secret is None
    again = runner.invoke(args=["staff", "disable-totp", "ed@example.org"])
    assert again.exit_code == 0 and "was not on" in again.output
    assert runner.invoke(args=["staff", "disable-totp", "x@example.org"]).exit_code != 0
