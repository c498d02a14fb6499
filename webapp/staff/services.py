"""Staff accounts, passwords, sign-in with throttling, TOTP and server-side sessions.

Throttling keeps counters in the database (`LoginFailure` rows), not in Flask-Limiter's
memory: they hold across gunicorn workers and restarts, and follow the injected clock in
tests. Within any 15-minute window:

* an account (the lower-cased address typed, known or not, so both behave alike) with
  `ACCOUNT_MAX_FAILURES` failures since its last successful sign-in is locked until the
  oldest of them is 15 minutes old;
* an IP with `IP_MAX_FAILURES` failures gets 429 for every sign-in attempt.

An attempt is counted before its password or code is checked: `_reserve_attempt` inserts
its row and commits it while holding a lock on the account's and the IP's counts (SQLite's
write lock, PostgreSQL advisory locks), and only an attempt that got a slot is checked. So
parallel guesses get at most `ACCOUNT_MAX_FAILURES` argon2 checks, however many arrive at
once; a right password or code deletes its row again. An attempt whose worker dies while
checking stays counted as a failure.

Every function takes the SQLAlchemy session and the time `now`; none commits but the two
sign-in steps (`authenticate`, `verify_totp_login`), which commit the reserved attempt
before checking; the caller commits the rest, so an action and its audit row land together.
Functions that hash an IP or an address (`hash_ip`) need an app context for the secret key.

This module is also the staff area's public face for the other features: their staff pages
take access control (`requires`, `current_staff`, `Permission`) and the audit log
(`record_audit`, `audit_request`) from here.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from webapp.core.clock import as_utc
from webapp.core.net import hash_ip
from webapp.db import begin_writing
from webapp.staff.audit import audit_request, record_audit
from webapp.staff.auth import current_staff, requires, signed_in_staff
from webapp.staff.models import LoginFailure, StaffSession, StaffUser
from webapp.staff.nav import add_nav_item
from webapp.staff.roles import Permission, Role, role_allows

__all__ = [
    "ACCOUNT_MAX_FAILURES",
    "DEFAULT_SESSION_LIFETIME",
    "FAILURE_WINDOW",
    "IP_MAX_FAILURES",
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "TOTP_DIGITS",
    "TOTP_ISSUER",
    "TOUCH_INTERVAL",
    "account_key",
    "audit_request",
    "authenticate",
    "begin_totp_enrolment",
    "change_own_password",
    "change_role",
    "check_password",
    "add_nav_item",
    "configure_password_hasher",
    "count_active_admins",
    "create_staff_user",
    "current_staff",
    "delete_stale_staff_rows",
    "disable_totp",
    "enable_totp",
    "generate_temporary_password",
    "get_staff_by_email",
    "hash_password",
    "hash_token",
    "invite_staff_user",
    "list_staff",
    "live_sessions",
    "load_session",
    "normalise_email",
    "password_hasher",
    "record_audit",
    "requires",
    "revoke_all_sessions",
    "revoke_session",
    "role_allows",
    "set_active",
    "set_password",
    "sign_out_everywhere",
    "signed_in_staff",
    "start_session",
    "totp_digits",
    "totp_uri",
    "touch_session",
    "use_totp_code",
    "validate_email",
    "validate_password",
    "validate_role",
    "verify_totp_login",
    "LoginOutcome",
    "LoginResult",
    "Permission",
    "Role",
    "StaffRuleError",
]

MIN_PASSWORD_LENGTH = 12
#: Longer input is refused before hashing, so nobody can make us hash megabytes.
MAX_PASSWORD_LENGTH = 1024
ACCOUNT_MAX_FAILURES = 5
IP_MAX_FAILURES = 20
FAILURE_WINDOW = timedelta(minutes=15)
#: `last_seen_at` is written at most this often, so browsing is not a write per request.
TOUCH_INTERVAL = timedelta(minutes=1)
DEFAULT_SESSION_LIFETIME = timedelta(hours=12)
TOTP_ISSUER = "Readership"

#: argon2id with the library's current recommended parameters; `needs_rehash` follows them.
#: Replaced by `configure_password_hasher` (from the app's ARGON2_* settings, if any).
password_hasher = PasswordHasher()
_dummy_hash: str | None = None


def configure_password_hasher(
    *, time_cost: int | None = None, memory_cost: int | None = None
) -> PasswordHasher:
    """Use argon2id with these costs (library defaults for None) for new hashes and rehashes.

    Production keeps the defaults; test suites may lower them for speed. Existing hashes
    keep verifying with their own parameters and are upgraded on the next sign-in.
    """
    global password_hasher, _dummy_hash
    defaults = PasswordHasher()
    hasher = PasswordHasher(
        time_cost=time_cost or defaults.time_cost,
        memory_cost=memory_cost or defaults.memory_cost,
        parallelism=defaults.parallelism,
    )
    if (hasher.time_cost, hasher.memory_cost) != (
        password_hasher.time_cost,
        password_hasher.memory_cost,
    ):
        password_hasher = hasher
        _dummy_hash = None  # the dummy must cost what a real verification costs
    return password_hasher


class StaffRuleError(ValueError):
    """A staff-management request that the rules forbid (e.g. removing the last admin)."""


# --- Passwords and accounts -----------------------------------------------------------


def normalise_email(email: str) -> str:
    """The address as stored: trimmed and lower-cased."""
    return (email or "").strip().lower()


def validate_email(email: str) -> str:
    """The normalised address; raises `ValueError` when it cannot be a sign-in address."""
    value = normalise_email(email)
    local, _, domain = value.partition("@")
    if (
        not local
        or not domain
        or "@" in domain
        or len(value) > 254
        or any(ch.isspace() or ord(ch) < 32 for ch in value)
    ):
        raise ValueError(f"{email!r} is not a valid email address.")
    return value


def validate_role(role: str) -> Role:
    """The `Role` named `role`; raises `ValueError` listing the valid roles."""
    try:
        return Role((role or "").strip().lower())
    except ValueError:
        valid = ", ".join(r.value for r in Role)
        raise ValueError(f"Unknown role {role!r}; choose one of: {valid}.") from None


def validate_password(password: str) -> None:
    """Raise `ValueError` unless `password` is an acceptable new password."""
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise ValueError(f"The password must be at least {MIN_PASSWORD_LENGTH} characters long.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"The password must be at most {MAX_PASSWORD_LENGTH} characters long.")


def _password_bytes(password: str) -> bytes:
    # surrogatepass: odd input must fail as a wrong password, never as an exception.
    return password.encode("utf-8", "surrogatepass")


def hash_password(password: str) -> str:
    """An argon2id hash of `password` (validated first)."""
    validate_password(password)
    return password_hasher.hash(_password_bytes(password))


def _verify_hash(password_hash: str, password: str) -> bool:
    try:
        return password_hasher.verify(password_hash, _password_bytes(password))
    except (VerificationError, InvalidHashError):
        return False


def _burn_dummy_hash(password: str) -> None:
    """Spend the time of one verification, so unknown addresses answer as slowly as known."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = password_hasher.hash(secrets.token_urlsafe(16))
    _verify_hash(_dummy_hash, password[:MAX_PASSWORD_LENGTH])


def check_password(user: StaffUser, password: str) -> bool:
    """True when `password` is the user's; upgrades the hash when parameters changed."""
    if len(password) > MAX_PASSWORD_LENGTH:
        _burn_dummy_hash(password)
        return False
    if not _verify_hash(user.password_hash, password):
        return False
    try:
        if password_hasher.check_needs_rehash(user.password_hash):
            user.password_hash = password_hasher.hash(_password_bytes(password))
    except InvalidHashError:  # pragma: no cover - verify already parsed it
        pass
    return True


def get_staff_by_email(session: Session, email: str) -> StaffUser | None:
    """The staff user with this address (any case), or None (also for input no address
    could be: too long, or with a NUL, which PostgreSQL refuses in a query)."""
    value = normalise_email(email)
    if not value or len(value) > 320 or "\x00" in value:
        return None
    return session.scalar(select(StaffUser).where(StaffUser.email == value))


def list_staff(session: Session) -> list[StaffUser]:
    """Every staff user: active first, then by address."""
    return list(
        session.scalars(select(StaffUser).order_by(StaffUser.active.desc(), StaffUser.email))
    )


def create_staff_user(
    session: Session, *, email: str, role: str, password: str, now: datetime, name: str = ""
) -> StaffUser:
    """Add an active staff user (flushed, not committed).

    Raises `ValueError` with a message fit for people when the address is invalid or taken,
    the role unknown, or the password shorter than `MIN_PASSWORD_LENGTH`.
    """
    address = validate_email(email)
    checked_role = validate_role(role)
    validate_password(password)
    if get_staff_by_email(session, address) is not None:
        raise ValueError(f"A staff user with the address {address} already exists.")
    clean_name = (name or "").strip()
    if any(ord(ch) < 32 for ch in clean_name):
        raise ValueError("The name may not contain control characters.")
    user = StaffUser(
        email=address,
        name=clean_name[:200],
        role=checked_role.value,
        password_hash=hash_password(password),
        totp_enabled=False,
        active=True,
        created_at=now,
        failed_logins=0,
    )
    session.add(user)
    session.flush()
    return user


def generate_temporary_password() -> str:
    """A random password to hand over once (about 96 bits)."""
    return secrets.token_urlsafe(12)


def invite_staff_user(
    session: Session,
    *,
    actor: StaffUser | None,
    email: str,
    role: str,
    name: str = "",
    password: str | None = None,
    now: datetime,
    ip: str | None = None,
) -> tuple[StaffUser, str | None]:
    """Create a staff user on behalf of `actor` and audit it.

    Without `password` a temporary one is generated and returned (to be shown once);
    with one, None is returned in its place. Raises `ValueError` like `create_staff_user`.
    """
    temporary = None if password else generate_temporary_password()
    user = create_staff_user(
        session, email=email, role=role, password=password or str(temporary), now=now, name=name
    )
    record_audit(
        session,
        actor=actor,
        action="staff.created",
        target_type="staff_user",
        target_id=user.id,
        details={"email": user.email, "role": user.role, "temporary_password": bool(temporary)},
        ip=ip,
        now=now,
    )
    return user, temporary


def set_password(
    session: Session,
    *,
    user: StaffUser,
    password: str,
    now: datetime,
    actor: StaffUser | None = None,
    ip: str | None = None,
    keep_session: StaffSession | None = None,
) -> None:
    """Give `user` a new password and revoke their sessions except `keep_session`; audited.

    Raises `ValueError` when the password is too short or too long.
    """
    user.password_hash = hash_password(password)
    revoked = revoke_all_sessions(session, user=user, now=now, except_session=keep_session)
    record_audit(
        session,
        actor=actor,
        action="staff.password_changed" if actor is user else "staff.password_reset",
        target_type="staff_user",
        target_id=user.id,
        details={"sessions_revoked": revoked},
        ip=ip,
        now=now,
    )


def change_own_password(
    session: Session,
    *,
    user: StaffUser,
    current_password: str,
    new_password: str,
    now: datetime,
    ip: str | None = None,
    keep_session: StaffSession | None = None,
) -> None:
    """Change a user's own password after checking the current one.

    Other sessions of the user are revoked. Raises `ValueError` when the current password
    is wrong or the new one unacceptable.
    """
    if not check_password(user, current_password):
        raise ValueError("The current password is not right.")
    set_password(
        session,
        user=user,
        password=new_password,
        now=now,
        actor=user,
        ip=ip,
        keep_session=keep_session,
    )


def count_active_admins(session: Session) -> int:
    """How many active admins there are."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(StaffUser)
            .where(StaffUser.role == Role.ADMIN.value, StaffUser.active.is_(True))
        )
        or 0
    )


def _is_last_admin(session: Session, user: StaffUser) -> bool:
    return user.role == Role.ADMIN.value and user.active and count_active_admins(session) <= 1


def change_role(
    session: Session,
    *,
    user: StaffUser,
    role: str,
    actor: StaffUser | None,
    now: datetime,
    ip: str | None = None,
) -> bool:
    """Give `user` another role; audited. Returns False when it was already that role.

    Raises `ValueError` for an unknown role and `StaffRuleError` when it would leave no
    active admin.
    """
    new_role = validate_role(role)
    if new_role.value == user.role:
        return False
    if new_role is not Role.ADMIN and _is_last_admin(session, user):
        raise StaffRuleError("This is the last active admin; make someone else admin first.")
    old = user.role
    user.role = new_role.value
    record_audit(
        session,
        actor=actor,
        action="staff.role_changed",
        target_type="staff_user",
        target_id=user.id,
        details={"email": user.email, "from": old, "to": new_role.value},
        ip=ip,
        now=now,
    )
    return True


def set_active(
    session: Session,
    *,
    user: StaffUser,
    active: bool,
    actor: StaffUser | None,
    now: datetime,
    ip: str | None = None,
) -> bool:
    """Deactivate (revoking every session) or reactivate `user`; audited.

    Returns False when nothing changed. Raises `StaffRuleError` when deactivating the last
    active admin.
    """
    if user.active == active:
        return False
    if not active and _is_last_admin(session, user):
        raise StaffRuleError("This is the last active admin; they cannot be deactivated.")
    user.active = active
    revoked = 0 if active else revoke_all_sessions(session, user=user, now=now)
    record_audit(
        session,
        actor=actor,
        action="staff.reactivated" if active else "staff.deactivated",
        target_type="staff_user",
        target_id=user.id,
        details={"email": user.email, "sessions_revoked": revoked},
        ip=ip,
        now=now,
    )
    return True


# --- Sign-in and throttling -----------------------------------------------------------


class LoginOutcome(enum.StrEnum):
    """What a sign-in step came to."""

    OK = "ok"  # signed in: start a session
    TOTP_REQUIRED = "totp_required"  # password right; ask for the second factor
    INVALID = "invalid"  # wrong address, password or code (one answer for all)
    ACCOUNT_LOCKED = "account_locked"  # too many failures for this account
    IP_LOCKED = "ip_locked"  # too many failures from this IP: answer 429


@dataclass(frozen=True)
class LoginResult:
    """The outcome of a sign-in step and, when the password was right, the user."""

    outcome: LoginOutcome
    user: StaffUser | None = None


def account_key(email: str) -> str:
    """Keyed hash of a typed address: the throttling key without storing the address."""
    return hash_ip("staff-account:" + normalise_email(email)[:320])


def _ip_failures(session: Session, ip_hash: str, now: datetime) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(LoginFailure)
            .where(LoginFailure.ip_hash == ip_hash, LoginFailure.at > now - FAILURE_WINDOW)
        )
        or 0
    )


def _account_failures(session: Session, key: str, user: StaffUser | None, now: datetime) -> int:
    since = now - FAILURE_WINDOW
    # A successful sign-in wipes the slate for the account (not for the IP).
    if user is not None and user.last_login_at is not None:
        since = max(since, as_utc(user.last_login_at))
    return int(
        session.scalar(
            select(func.count())
            .select_from(LoginFailure)
            .where(LoginFailure.account_key == key, LoginFailure.at > since)
        )
        or 0
    )


@dataclass(frozen=True)
class _Attempt:
    """A sign-in attempt that got a slot: its counted row and its place in both counts."""

    row_id: int
    #: 1 for the first attempt on the account since its window (or last sign-in) began.
    account_ordinal: int
    #: 1 for the first attempt from the IP in the window.
    ip_ordinal: int


def _advisory_lock_id(name: str) -> int:
    """A signed 64-bit number for `pg_advisory_xact_lock`, derived from a throttling key."""
    digest = hashlib.blake2b(b"staff-sign-in:" + name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _reserve_attempt(
    session: Session,
    *,
    key: str,
    ip_hash: str,
    user: StaffUser | None,
    step: str,
    now: datetime,
) -> _Attempt | LoginOutcome:
    """Count one attempt before it is checked, or refuse it when the account or IP is locked.

    Commits (the lock is released and the slot taken either way). The count and the insert
    run under a lock on both keys, so two requests never take the same last slot: on SQLite
    `BEGIN IMMEDIATE` takes the database's write lock first; on PostgreSQL, where concurrent
    inserts would not see each other, transaction-scoped advisory locks on the account and
    the IP (taken in a fixed order, so two requests cannot wait on each other).
    """
    begin_writing(session)
    if session.get_bind().dialect.name == "postgresql":
        for lock_id in sorted({_advisory_lock_id(key), _advisory_lock_id(ip_hash)}):
            session.execute(select(func.pg_advisory_xact_lock(lock_id)))
    ip_count = _ip_failures(session, ip_hash, now)
    account_count = _account_failures(session, key, user, now)
    refused: LoginOutcome | None = None
    if ip_count >= IP_MAX_FAILURES:
        refused = LoginOutcome.IP_LOCKED
    elif account_count >= ACCOUNT_MAX_FAILURES:
        refused = LoginOutcome.ACCOUNT_LOCKED
    if refused is not None:
        session.commit()
        return refused
    row = LoginFailure(at=now, account_key=key, ip_hash=ip_hash, step=step)
    session.add(row)
    # Old rows only matter for 15 minutes; prune a day's worth lazily, here.
    session.execute(delete(LoginFailure).where(LoginFailure.at < now - timedelta(days=1)))
    session.flush()
    attempt = _Attempt(row.id, account_count + 1, ip_count + 1)
    session.commit()
    return attempt


def _attempt_succeeded(session: Session, attempt: _Attempt) -> None:
    """The password or code was right: the attempt no longer counts as a failure."""
    session.execute(delete(LoginFailure).where(LoginFailure.id == attempt.row_id))


def _attempt_failed(
    session: Session,
    *,
    attempt: _Attempt,
    ip: str,
    user: StaffUser | None,
    step: str,
    now: datetime,
) -> LoginOutcome:
    """The attempt (already counted) failed; audit and report a lockout when it caused one.

    The attempt that took the last slot is the one that locks, so exactly one lockout is
    audited however many failures arrive at once.
    """
    if user is not None:
        # In SQL, so parallel failures each add one.
        session.execute(
            update(StaffUser)
            .where(StaffUser.id == user.id)
            .values(failed_logins=func.coalesce(StaffUser.failed_logins, 0) + 1)
            .execution_options(synchronize_session=False)
        )
        session.refresh(user, ["failed_logins"])
    if attempt.account_ordinal == ACCOUNT_MAX_FAILURES:
        record_audit(
            session,
            actor=None,
            action="staff.login_locked",
            target_type="staff_user" if user is not None else None,
            target_id=user.id if user is not None else None,
            details={"step": step, "known_account": user is not None},
            ip=ip,
            now=now,
        )
        return LoginOutcome.ACCOUNT_LOCKED
    if attempt.ip_ordinal == IP_MAX_FAILURES:
        record_audit(
            session,
            actor=None,
            action="staff.login_ip_locked",
            details={"step": step},
            ip=ip,
            now=now,
        )
        return LoginOutcome.IP_LOCKED
    return LoginOutcome.INVALID


def authenticate(
    session: Session, *, email: str, password: str, ip: str, now: datetime
) -> LoginResult:
    """Check an address and password, with per-account and per-IP throttling.

    The attempt is counted (and committed) before the password is hashed; a locked account
    or IP is refused without hashing. Unknown address, inactive account and wrong password
    all give `INVALID` after the same amount of hashing work. A right password gives `OK`,
    or `TOTP_REQUIRED` when the account has a second factor, and its attempt stops counting;
    no session is started here (see `start_session`). The caller commits the outcome.
    """
    key = account_key(email)
    user = get_staff_by_email(session, email)
    attempt = _reserve_attempt(
        session, key=key, ip_hash=hash_ip(ip), user=user, step="password", now=now
    )
    if isinstance(attempt, LoginOutcome):
        return LoginResult(attempt)
    if user is None or not user.active:
        _burn_dummy_hash(password)
        ok = False
    else:
        ok = check_password(user, password)
    if not ok:
        outcome = _attempt_failed(
            session, attempt=attempt, ip=ip, user=user, step="password", now=now
        )
        return LoginResult(outcome)
    assert user is not None
    _attempt_succeeded(session, attempt)
    if user.totp_enabled and user.totp_secret:
        return LoginResult(LoginOutcome.TOTP_REQUIRED, user)
    return LoginResult(LoginOutcome.OK, user)


def verify_totp_login(
    session: Session, *, user_id: int, code: str, ip: str, now: datetime
) -> LoginResult:
    """The second sign-in step: check a TOTP code for a user whose password was right.

    Throttled like `authenticate` (a wrong or already used code counts as a failure of the
    account, counted before the code is checked). The caller commits the outcome.
    """
    user = session.get(StaffUser, user_id)
    if user is None or not user.active or not user.totp_enabled:
        return LoginResult(LoginOutcome.INVALID)
    attempt = _reserve_attempt(
        session,
        key=account_key(user.email),
        ip_hash=hash_ip(ip),
        user=user,
        step="totp",
        now=now,
    )
    if isinstance(attempt, LoginOutcome):
        return LoginResult(attempt)
    if not use_totp_code(session, user, code, now):
        outcome = _attempt_failed(session, attempt=attempt, ip=ip, user=user, step="totp", now=now)
        return LoginResult(outcome)
    _attempt_succeeded(session, attempt)
    return LoginResult(LoginOutcome.OK, user)


# --- TOTP -----------------------------------------------------------------------------


def totp_uri(user: StaffUser, secret: str, issuer: str = TOTP_ISSUER) -> str:
    """The otpauth:// URI an authenticator app scans."""
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=issuer)


#: What a code may look like: six ASCII digits (spaces between them are allowed).
TOTP_DIGITS = 6


def totp_digits(code: str | None) -> str | None:
    """The six ASCII digits of a typed code (spaces dropped), or None when it is not one.

    Only 0-9: `str.isdigit` also accepts other scripts' digits ("١٢٣٤٥٦"), which no
    authenticator shows and which the code comparison cannot take.
    """
    digits = (code or "").replace(" ", "")
    if len(digits) != TOTP_DIGITS or not digits.isascii() or not digits.isdigit():
        return None
    return digits


def use_totp_code(
    session: Session, user: StaffUser, code: str, now: datetime, *, secret: str | None = None
) -> bool:
    """True when `code` is valid now (±30 s) and newer than the last code the user used.

    Each code is good once: the accepted time step is recorded with a conditional UPDATE
    (only if it is newer than the stored one), so of two requests with the same code, at
    the same time or one after the other, only one gets True. Not committed.
    """
    key = secret or user.totp_secret
    digits = totp_digits(code)
    if not key or digits is None:
        return False
    totp = pyotp.TOTP(key)
    for offset in (0, -1, 1):
        moment = now + timedelta(seconds=30 * offset)
        if not hmac.compare_digest(totp.at(moment), digits):
            continue
        timecode = totp.timecode(moment)
        claimed = session.execute(
            update(StaffUser)
            .where(
                StaffUser.id == user.id,
                (StaffUser.totp_last_timecode.is_(None))
                | (StaffUser.totp_last_timecode < timecode),
            )
            .values(totp_last_timecode=timecode)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount == 1:  # type: ignore[attr-defined]
            # The row has it already; keep the loaded object in step without a second write.
            set_committed_value(user, "totp_last_timecode", timecode)
            return True
    return False


def begin_totp_enrolment(user: StaffUser) -> str:
    """A fresh secret stored on the (not yet enabled) user; returns it for the QR code."""
    if user.totp_enabled:
        raise StaffRuleError("Two-factor sign-in is already on.")
    user.totp_secret = pyotp.random_base32()
    user.totp_last_timecode = None
    return user.totp_secret


def enable_totp(
    session: Session, *, user: StaffUser, code: str, now: datetime, ip: str | None = None
) -> bool:
    """Turn on the second factor once `code` matches the enrolment secret; audited.

    Returns False (and changes nothing) when the code is wrong or no enrolment is pending.
    """
    if user.totp_enabled or not user.totp_secret or not use_totp_code(session, user, code, now):
        return False
    user.totp_enabled = True
    record_audit(
        session,
        actor=user,
        action="staff.totp_enabled",
        target_type="staff_user",
        target_id=user.id,
        ip=ip,
        now=now,
    )
    return True


def disable_totp(
    session: Session,
    *,
    user: StaffUser,
    now: datetime,
    code: str | None = None,
    actor: StaffUser | None = None,
    ip: str | None = None,
) -> bool:
    """Turn the second factor off; audited.

    With `code` (the user themself) the code must be valid, else False is returned. Without
    a code (the `disable-totp` command for a lost phone) it is simply switched off.
    """
    if not user.totp_enabled:
        return False
    if code is not None and not use_totp_code(session, user, code, now):
        return False
    user.totp_enabled = False
    user.totp_secret = None
    user.totp_last_timecode = None
    record_audit(
        session,
        actor=actor,
        action="staff.totp_disabled",
        target_type="staff_user",
        target_id=user.id,
        details={"with_code": code is not None},
        ip=ip,
        now=now,
    )
    return True


# --- Sessions -------------------------------------------------------------------------


def hash_token(token: str) -> str:
    """What the database stores for a session token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def start_session(
    session: Session,
    *,
    user: StaffUser,
    ip: str | None,
    user_agent: str,
    now: datetime,
    lifetime: timedelta = DEFAULT_SESSION_LIFETIME,
    replaces: str | None = None,
) -> tuple[StaffSession, str]:
    """Complete sign-in: a new session row and its random token (for the cookie); audited.

    `replaces` is the token the browser carried before, if any; it is revoked so an old
    or planted cookie is worthless afterwards. Resets the user's failure count.
    """
    if replaces:
        old = session.scalar(
            select(StaffSession).where(StaffSession.token_hash == hash_token(replaces))
        )
        if old is not None and old.revoked_at is None:
            old.revoked_at = now
    token = secrets.token_urlsafe(32)
    row = StaffSession(
        token_hash=hash_token(token),
        staff_user_id=user.id,
        created_at=now,
        last_seen_at=now,
        expires_at=now + lifetime,
        ip_hash=hash_ip(ip) if ip else None,
        user_agent=(user_agent or "").replace("\x00", "")[:300],
    )
    session.add(row)
    user.last_login_at = now
    user.failed_logins = 0
    record_audit(
        session,
        actor=user,
        action="staff.login",
        target_type="staff_user",
        target_id=user.id,
        details={"totp": bool(user.totp_enabled)},
        ip=ip,
        now=now,
    )
    session.flush()
    return row, token


def load_session(session: Session, *, token: str, now: datetime) -> StaffSession | None:
    """The live session for `token`: not revoked, not expired, its user active; else None."""
    if not token or len(token) > 200:
        return None
    row = session.scalar(select(StaffSession).where(StaffSession.token_hash == hash_token(token)))
    if row is None or row.revoked_at is not None or as_utc(row.expires_at) <= now:
        return None
    if not row.user.active:
        return None
    return row


def touch_session(row: StaffSession, now: datetime) -> bool:
    """Note activity on the session at most once per `TOUCH_INTERVAL`; True when changed."""
    if now - as_utc(row.last_seen_at) >= TOUCH_INTERVAL:
        row.last_seen_at = now
        return True
    return False


def revoke_session(session: Session, *, token: str, now: datetime) -> StaffSession | None:
    """Sign one browser out; returns the revoked row (None when there was none live)."""
    row = session.scalar(select(StaffSession).where(StaffSession.token_hash == hash_token(token)))
    if row is None or row.revoked_at is not None:
        return None
    row.revoked_at = now
    return row


def revoke_all_sessions(
    session: Session,
    *,
    user: StaffUser,
    now: datetime,
    except_session: StaffSession | None = None,
) -> int:
    """Revoke every live session of `user` (but `except_session`); returns how many."""
    query = update(StaffSession).where(
        StaffSession.staff_user_id == user.id, StaffSession.revoked_at.is_(None)
    )
    if except_session is not None:
        query = query.where(StaffSession.id != except_session.id)
    result = session.execute(
        query.values(revoked_at=now).execution_options(synchronize_session="fetch")
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def sign_out_everywhere(
    session: Session, *, user: StaffUser, now: datetime, ip: str | None = None
) -> int:
    """Revoke all of the user's sessions, this one included; audited. Returns how many."""
    revoked = revoke_all_sessions(session, user=user, now=now)
    record_audit(
        session,
        actor=user,
        action="staff.signed_out_everywhere",
        target_type="staff_user",
        target_id=user.id,
        details={"sessions_revoked": revoked},
        ip=ip,
        now=now,
    )
    return revoked


def live_sessions(session: Session, *, user: StaffUser, now: datetime) -> list[StaffSession]:
    """The user's sessions that still sign them in, newest first."""
    rows = session.scalars(
        select(StaffSession)
        .where(StaffSession.staff_user_id == user.id, StaffSession.revoked_at.is_(None))
        .order_by(StaffSession.created_at.desc())
    )
    return [row for row in rows if as_utc(row.expires_at) > now]


def delete_stale_staff_rows(
    session: Session, *, now: datetime, keep: timedelta = timedelta(days=30)
) -> int:
    """Delete sessions that ended (expired or revoked) more than `keep` ago and failed
    sign-in rows older than a day; returns how many rows went. For the clean-up job."""
    cutoff = now - keep
    ended = session.execute(
        delete(StaffSession).where(
            (StaffSession.expires_at < cutoff) | (StaffSession.revoked_at < cutoff)
        )
    )
    failures = session.execute(
        delete(LoginFailure).where(LoginFailure.at < now - timedelta(days=1))
    )
    return int(ended.rowcount or 0) + int(failures.rowcount or 0)  # type: ignore[attr-defined]
