"""Staff users, their server-side sessions, failed sign-in attempts and the audit log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.db import Base


class StaffUser(Base):
    """A person who signs in to `/staff`; what they may do comes from `role`."""

    __tablename__ = "staff_users"

    #: Surrogate key.
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Sign-in address, stored lower-cased; unique.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    #: Display name (may be empty).
    name: Mapped[str] = mapped_column(String(200), default="")
    #: One of `webapp.staff.roles.Role`.
    role: Mapped[str] = mapped_column(String(20))
    #: argon2id hash (PHC string) of the password.
    password_hash: Mapped[str] = mapped_column(String(255))
    #: Base32 TOTP secret; set while enrolling and while enabled, else NULL.
    totp_secret: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: True once a code has been verified against `totp_secret`.
    totp_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The last TOTP time step accepted, so one code cannot be used twice.
    totp_last_timecode: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: False once deactivated: cannot sign in, sessions are revoked.
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: When the account was created.
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: When the person last completed sign-in.
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: Failed sign-ins since the last success (shown to admins; throttling uses `LoginFailure`).
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)

    sessions: Mapped[list[StaffSession]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def display_name(self) -> str:
        """The name, or the address when there is no name."""
        return self.name or self.email

    def __repr__(self) -> str:
        return f"<StaffUser {self.id} {self.email} {self.role}>"


class StaffSession(Base):
    """A signed-in browser: the cookie holds a random token, the row only its hash."""

    __tablename__ = "staff_sessions"

    #: Surrogate key.
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: SHA-256 hex of the random session token kept in the signed cookie.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: Whose session this is.
    staff_user_id: Mapped[int] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), index=True
    )
    #: When sign-in completed.
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: Last request seen (updated at most once a minute).
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: After this moment the session no longer signs anyone in.
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: Set by sign-out, "sign out everywhere", password change or deactivation.
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: Keyed hash of the client IP at sign-in.
    ip_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: Browser's User-Agent at sign-in (truncated), to recognise one's own sessions.
    user_agent: Mapped[str] = mapped_column(String(300), default="")

    user: Mapped[StaffUser] = relationship(back_populates="sessions")


class LoginFailure(Base):
    """One sign-in attempt that failed, or is being checked; counted per account and per IP.

    The row is written (and committed) before the password or code is checked, and deleted
    again when it was right, so parallel guesses cannot all pass the count at once.
    """

    __tablename__ = "staff_login_failures"
    __table_args__ = (
        Index("ix_staff_login_failures_account_at", "account_key", "at"),
        Index("ix_staff_login_failures_ip_at", "ip_hash", "at"),
    )

    #: Surrogate key.
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: When the attempt was made (counted from then on).
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: Keyed hash of the lower-cased address typed (known or not, so both lock alike).
    account_key: Mapped[str] = mapped_column(String(64))
    #: Keyed hash of the client IP.
    ip_hash: Mapped[str] = mapped_column(String(64))
    #: "password" or "totp": which step failed.
    step: Mapped[str] = mapped_column(String(20), default="password")


class AuditLog(Base):
    """A sensitive action: who did what to which record, when and from where."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_action_at", "action", "at"),
        Index("ix_audit_log_actor_email", "actor_email"),
    )

    #: Surrogate key; also the order of entries.
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: When it happened.
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: The staff user who acted; NULL for the system or a deleted account.
    actor_staff_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL"), nullable=True
    )
    #: The actor's address at the time (kept when the account goes), or "system".
    actor_email: Mapped[str] = mapped_column(String(254))
    #: Dotted action name, e.g. "staff.login", "subscribers.export".
    action: Mapped[str] = mapped_column(String(100))
    #: Kind of record acted on, e.g. "staff_user", "subscriber".
    target_type: Mapped[str | None] = mapped_column(String(50), nullable=True)
    #: Its id (text, so any key fits).
    target_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    #: JSON object with whatever else matters (counts, changed fields).
    details: Mapped[str] = mapped_column(Text, default="{}")
    #: Keyed hash of the actor's IP, when the action came from a request.
    ip_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
