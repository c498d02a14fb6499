"""The audit log: every sensitive action (sign-in, export, erasure, import, settings, send...).

Other features call `record_audit` from their services (or `audit_request` from a view) in
the same transaction as the action itself, so an action and its audit row commit together.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.core.net import hash_ip
from webapp.staff.models import AuditLog, StaffUser

#: Shown as the actor of entries written by jobs and the command line.
SYSTEM_ACTOR = "system"


def record_audit(
    session: Session,
    *,
    actor: StaffUser | None,
    action: str,
    target_type: str | None = None,
    target_id: Any = None,
    details: dict[str, Any] | None = None,
    ip: str | None = None,
    now: datetime,
) -> AuditLog:
    """Add one audit entry to `session` (flushed, not committed: the caller commits).

    `actor` is the staff user who acted, or None for the system (jobs, CLI). `ip` is the
    client address as `webapp.core.net.client_ip()` returns it; only a keyed hash is
    stored, so it needs an app context when given. `details` must be JSON-serialisable
    (dates and other objects are stored as their `str()`).
    """
    entry = AuditLog(
        at=now,
        actor_staff_id=actor.id if actor is not None else None,
        actor_email=actor.email if actor is not None else SYSTEM_ACTOR,
        action=action[:100],
        target_type=target_type,
        target_id=None if target_id is None else str(target_id)[:100],
        details=json.dumps(details or {}, ensure_ascii=False, sort_keys=True, default=str),
        ip_hash=hash_ip(ip) if ip else None,
    )
    session.add(entry)
    session.flush()
    return entry


def audit_request(
    session: Session,
    *,
    action: str,
    target_type: str | None = None,
    target_id: Any = None,
    details: dict[str, Any] | None = None,
) -> AuditLog:
    """`record_audit` for a staff view: the actor, IP and time come from the current request.

    Only for view code (it reads `g` and `request`); services take `record_audit`'s arguments.
    """
    from webapp.core.clock import utcnow
    from webapp.core.net import client_ip
    from webapp.staff.auth import current_staff

    return record_audit(
        session,
        actor=current_staff(),
        action=action,
        target_type=target_type,
        target_id=target_id,
        details=details,
        ip=client_ip(),
        now=utcnow(),
    )


def audit_details(entry: AuditLog) -> dict[str, Any]:
    """The entry's details as a dict (an empty dict when the stored text is not JSON)."""
    try:
        value = json.loads(entry.details or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {"value": value}


@dataclass(frozen=True)
class AuditPage:
    """One page of audit entries, newest first."""

    entries: list[AuditLog]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        """How many pages there are (at least 1)."""
        return max(1, -(-self.total // self.per_page))

    @property
    def has_next(self) -> bool:
        """True when an older page exists."""
        return self.page < self.pages

    @property
    def has_prev(self) -> bool:
        """True when a newer page exists."""
        return self.page > 1


def list_audit_entries(
    session: Session,
    *,
    action: str | None = None,
    actor: str | None = None,
    page: int = 1,
    per_page: int = 50,
) -> AuditPage:
    """Audit entries newest first, optionally only one `action` and actors whose address
    contains `actor` (case-insensitive)."""
    # PostgreSQL refuses NUL in query text; such a filter cannot match anything anyway.
    action = (action or "").replace("\x00", "")
    actor = (actor or "").replace("\x00", "")
    query = select(AuditLog)
    count = select(func.count()).select_from(AuditLog)
    if action:
        query = query.where(AuditLog.action == action)
        count = count.where(AuditLog.action == action)
    if actor:
        pattern = f"%{_escape_like(actor.strip().lower())}%"
        query = query.where(AuditLog.actor_email.like(pattern, escape="\\"))
        count = count.where(AuditLog.actor_email.like(pattern, escape="\\"))
    total = int(session.scalar(count) or 0)
    page = max(1, page)
    entries = list(
        session.scalars(
            query.order_by(AuditLog.at.desc(), AuditLog.id.desc())
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
    )
    return AuditPage(entries=entries, page=page, per_page=per_page, total=total)


def audit_actions(session: Session) -> list[str]:
    """Every action name present in the log, sorted (for the filter menu)."""
    return sorted(session.scalars(select(AuditLog.action).distinct()))


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
