"""The scheduling feature's public face: database locks for jobs, one holder per job name,
with a lease that expires, so a second scheduler process (or a `jobs run` by hand) never
runs a job that is already running, and a crashed holder does not block it for ever."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp.scheduling.models import JobLock


def acquire(session: Session, name: str, holder: str, *, now: datetime, lease: timedelta) -> bool:
    """Take the lock of job `name` for `lease`; False when someone else holds it. Commits."""
    taken = session.execute(
        update(JobLock)
        .where(
            JobLock.name == name,
            or_(
                JobLock.holder == "",
                JobLock.holder == holder,
                JobLock.expires_at.is_(None),
                JobLock.expires_at < now,
            ),
        )
        .values(holder=holder, expires_at=now + lease)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if taken:
        session.commit()
        return True
    try:
        session.add(JobLock(name=name, holder=holder, expires_at=now + lease))
        session.commit()
        return True
    except IntegrityError:
        session.rollback()
        return False


def release(session: Session, name: str, holder: str) -> None:
    """Give the lock back (only if we still hold it). Commits."""
    session.execute(
        update(JobLock)
        .where(JobLock.name == name, JobLock.holder == holder)
        .values(holder="", expires_at=None)
        .execution_options(synchronize_session=False)
    )
    session.commit()
