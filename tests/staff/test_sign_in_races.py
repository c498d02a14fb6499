"""Sign-in under real concurrency: parallel guesses, parallel replays of one TOTP code.

Every request runs in its own thread with its own test client, app context and database
session (so its own connection), as gunicorn's workers would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import pyotp
import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.helpers.html import csrf_token
from tests.staff.factories import DEFAULT_PASSWORD, make_staff
from webapp.core.clock import FrozenClock
from webapp.db import get_database
from webapp.staff import services
from webapp.staff.models import AuditLog, LoginFailure, StaffSession, StaffUser

PARALLEL = 16
WRONG = "not the password at all"
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


class CountingHasher(PasswordHasher):
    """The app's argon2id hasher, counting `verify` calls and making each one slow.

    The pause widens the window between the check and its bookkeeping, so a count kept
    after the hash (the old bug) lets nearly every parallel guess through.
    """

    def __init__(self, base: PasswordHasher, pause: float = 0.05) -> None:
        super().__init__(
            time_cost=base.time_cost, memory_cost=base.memory_cost, parallelism=base.parallelism
        )
        self.pause = pause
        self.calls = 0
        self._lock = threading.Lock()

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:  # noqa: A002
        with self._lock:
            self.calls += 1
        threading.Event().wait(self.pause)
        return super().verify(hash, password)


@pytest.fixture
def counting_hasher(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[CountingHasher]:
    """Wrap the hasher `configure_password_hasher` installed for this app."""
    hasher = CountingHasher(services.password_hasher)
    monkeypatch.setattr(services, "password_hasher", hasher)
    monkeypatch.setattr(services, "_dummy_hash", None)
    yield hasher


def run_in_parallel(
    app: Flask,
    count: int,
    prepare: Callable[[FlaskClient], Any],
    act: Callable[[FlaskClient, Any], Any],
) -> list[Any]:
    """`prepare` then, all released at once, `act` in `count` threads, one client each."""
    barrier = threading.Barrier(count)

    def one(_index: int) -> Any:
        client = app.test_client()
        state = prepare(client)
        barrier.wait(timeout=30)
        return act(client, state)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def login_page_token(client: FlaskClient) -> str:
    return csrf_token(client.get("/staff/login").text)


def post_password(email: str, password: str) -> Callable[[FlaskClient, str], int]:
    def act(client: FlaskClient, token: str) -> int:
        response = client.post(
            "/staff/login", data={"email": email, "password": password, "csrf_token": token}
        )
        return response.status_code

    return act


def count_rows(db_session: Session, model: Any, *where: Any) -> int:
    db_session.expire_all()
    return int(db_session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


@pytest.mark.parametrize("known", [True, False], ids=["known-account", "unknown-address"])
def test_parallel_wrong_passwords_get_at_most_the_limit_of_argon2_checks(
    app: Flask, db_session: Session, counting_hasher: CountingHasher, known: bool
) -> None:
    if known:
        make_staff(db_session, email="target@example.org")
        db_session.commit()
    statuses = run_in_parallel(
        app, PARALLEL, login_page_token, post_password("target@example.org", WRONG)
    )
    # Exactly the limit got a slot (and a hash); the rest were refused before hashing.
    assert counting_hasher.calls == services.ACCOUNT_MAX_FAILURES
    assert sorted(statuses) == [422] * (services.ACCOUNT_MAX_FAILURES - 1) + [429] * (
        PARALLEL - services.ACCOUNT_MAX_FAILURES + 1
    )
    assert count_rows(db_session, LoginFailure) == services.ACCOUNT_MAX_FAILURES
    assert count_rows(db_session, AuditLog, AuditLog.action == "staff.login_locked") == 1
    if known:
        user = db_session.scalar(select(StaffUser))
        assert user is not None and user.failed_logins == services.ACCOUNT_MAX_FAILURES


def test_parallel_guesses_from_one_ip_on_many_accounts_stop_at_the_ip_limit(
    app: Flask, db_session: Session, counting_hasher: CountingHasher
) -> None:
    accounts = iter(range(100))
    lock = threading.Lock()

    def prepare(client: FlaskClient) -> tuple[str, str]:
        with lock:
            email = f"guess{next(accounts)}@example.org"
        return email, login_page_token(client)

    def act(client: FlaskClient, state: tuple[str, str]) -> list[int]:
        email, token = state
        # Two guesses per account: no account reaches its own limit.
        return [
            client.post(
                "/staff/login", data={"email": email, "password": WRONG, "csrf_token": token}
            ).status_code
            for _ in range(2)
        ]

    statuses = [code for pair in run_in_parallel(app, PARALLEL, prepare, act) for code in pair]
    assert counting_hasher.calls == services.IP_MAX_FAILURES
    assert statuses.count(429) == 2 * PARALLEL - services.IP_MAX_FAILURES + 1
    assert count_rows(db_session, LoginFailure) == services.IP_MAX_FAILURES
    assert count_rows(db_session, AuditLog, AuditLog.action == "staff.login_ip_locked") == 1


def test_the_right_password_among_parallel_guesses_is_not_a_failure(
    app: Flask, db_session: Session, counting_hasher: CountingHasher
) -> None:
    make_staff(db_session, email="owner@example.org")
    db_session.commit()
    passwords = [DEFAULT_PASSWORD] + [WRONG] * 3
    lock = threading.Lock()

    def prepare(client: FlaskClient) -> tuple[str, str]:
        with lock:
            password = passwords.pop()
        return password, login_page_token(client)

    def act(client: FlaskClient, state: tuple[str, str]) -> int:
        password, token = state
        return post_password("owner@example.org", password)(client, token)

    statuses = run_in_parallel(app, 4, prepare, act)
    assert sorted(statuses) == [302, 422, 422, 422]
    # Only the three wrong ones count; the right one's reserved slot was given back.
    assert count_rows(db_session, LoginFailure) == 3
    assert count_rows(db_session, StaffSession) == 1


def test_a_locked_account_is_refused_without_hashing(
    client: FlaskClient, db_session: Session, counting_hasher: CountingHasher
) -> None:
    make_staff(db_session, email="locked@example.org")
    db_session.commit()
    for _ in range(services.ACCOUNT_MAX_FAILURES):
        post_password("locked@example.org", WRONG)(client, login_page_token(client))
    before = counting_hasher.calls
    response = client.post(
        "/staff/login",
        data={
            "email": "locked@example.org",
            "password": DEFAULT_PASSWORD,
            "csrf_token": login_page_token(client),
        },
    )
    assert response.status_code == 429 and "locked for 15 minutes" in response.text
    assert counting_hasher.calls == before


# --- TOTP ---------------------------------------------------------------------------------


def make_totp_staff(db_session: Session, email: str = "otp@example.org") -> StaffUser:
    user = make_staff(db_session, email=email)
    user.totp_secret, user.totp_enabled = SECRET, True
    db_session.commit()
    return user


def password_step(client: FlaskClient, email: str = "otp@example.org") -> str:
    """Pass the password step; returns the TOTP page's CSRF token."""
    response = post_password(email, DEFAULT_PASSWORD)(client, login_page_token(client))
    assert response == 302
    return csrf_token(client.get("/staff/login/totp").text)


def post_code(code: str) -> Callable[[FlaskClient, str], int]:
    def act(client: FlaskClient, token: str) -> int:
        response = client.post("/staff/login/totp", data={"code": code, "csrf_token": token})
        return response.status_code

    return act


def test_one_code_sent_twice_in_parallel_signs_in_once(
    app: Flask, db_session: Session, clock: FrozenClock
) -> None:
    make_totp_staff(db_session)
    for round_ in range(3):
        code = pyotp.TOTP(SECRET).at(clock.now())
        statuses = run_in_parallel(app, 2, password_step, post_code(code))
        assert sorted(statuses) == [302, 422], (round_, statuses)
        assert count_rows(db_session, StaffSession) == round_ + 1
        clock.advance(seconds=30)


def test_a_used_code_is_refused_the_second_time(
    client: FlaskClient, db_session: Session, clock: FrozenClock
) -> None:
    make_totp_staff(db_session)
    code = pyotp.TOTP(SECRET).at(clock.now())
    assert post_code(code)(client, password_step(client)) == 302
    fresh = client.application.test_client()
    again = fresh.post("/staff/login/totp", data={"code": code, "csrf_token": password_step(fresh)})
    assert again.status_code == 422
    assert "That code is not right" in again.text
    # The next time step's code works.
    clock.advance(seconds=30)
    later = client.application.test_client()
    assert post_code(pyotp.TOTP(SECRET).at(clock.now()))(later, password_step(later)) == 302


ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


@pytest.mark.parametrize(
    "typed",
    ["١٢٣٤٥٦", "valid-in-arabic-indic", "１２３４５６", "12345６", "12345", "1234567", "12a456"],
)
def test_totp_takes_ascii_digits_only(
    client: FlaskClient, db_session: Session, clock: FrozenClock, typed: str
) -> None:
    make_totp_staff(db_session)
    if typed == "valid-in-arabic-indic":
        typed = pyotp.TOTP(SECRET).at(clock.now()).translate(ARABIC_INDIC)
    response = client.post(
        "/staff/login/totp", data={"code": typed, "csrf_token": password_step(client)}
    )
    assert response.status_code == 422
    assert "Enter the six digits 0-9" in response.text
    assert count_rows(db_session, StaffSession) == 0


def test_totp_with_spaces_between_digits_is_fine(
    client: FlaskClient, db_session: Session, clock: FrozenClock
) -> None:
    make_totp_staff(db_session)
    code = pyotp.TOTP(SECRET).at(clock.now())
    assert post_code(f"{code[:3]} {code[3:]}")(client, password_step(client)) == 302


def test_account_totp_forms_take_ascii_digits_only(
    client: FlaskClient, db_session: Session, clock: FrozenClock
) -> None:
    user = make_totp_staff(db_session)
    code = pyotp.TOTP(SECRET).at(clock.now())
    assert post_code(code)(client, password_step(client)) == 302
    page = client.get("/staff/account")
    clock.advance(seconds=30)
    arabic = pyotp.TOTP(SECRET).at(clock.now()).translate(ARABIC_INDIC)
    response = client.post(
        "/staff/account/totp/disable",
        data={"totp_code": arabic, "csrf_token": csrf_token(page.text)},
    )
    assert response.status_code == 422
    assert "Enter the six digits 0-9" in response.text
    db_session.expire_all()
    assert db_session.get(StaffUser, user.id).totp_enabled  # type: ignore[union-attr]


def test_use_totp_code_is_once_per_time_step(
    app: Flask, db_session: Session, clock: FrozenClock
) -> None:
    user = make_totp_staff(db_session)
    code = pyotp.TOTP(SECRET).at(clock.now())
    assert services.use_totp_code(db_session, user, code, clock.now())
    assert not services.use_totp_code(db_session, user, code, clock.now())
    db_session.commit()
    # Another session, reading the row afresh, is refused too: the step is in the database.
    with get_database(app).session() as other:
        again = other.get(StaffUser, user.id)
        assert again is not None
        assert not services.use_totp_code(other, again, code, clock.now())
    assert not services.use_totp_code(db_session, user, "١٢٣٤٥٦", clock.now())
