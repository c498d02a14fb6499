"""Daily clean-up: expire unconfirmed signups, drop ended staff sessions and old failures."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask

from jobs.registry import Job
from webapp.articles.services import purge_raw_views
from webapp.core.clock import get_clock
from webapp.db import get_database
from webapp.staff.services import delete_stale_staff_rows
from webapp.subscribers.services import expire_pending_signups


def run_cleanup(app: Flask) -> str:
    """Remove what is past its keeping time; returns what was removed."""
    now = get_clock(app).now()
    max_age = timedelta(days=app.config["PENDING_SIGNUP_EXPIRY_DAYS"])
    with get_database(app).session() as session:
        expired = expire_pending_signups(session, now=now, max_age=max_age)
        staff_rows = delete_stale_staff_rows(session, now=now)
        raw_views = purge_raw_views(session, now=now)
        session.commit()
    return (
        f"expired {expired} pending signups, removed {staff_rows} ended staff session rows, "
        f"{raw_views} raw view rows"
    )


#: This module's jobs, gathered by `jobs.registry.load_jobs` (importing it registers nothing).
JOBS: tuple[Job, ...] = (
    Job(
        "cleanup",
        "Expire unconfirmed signups and old raw data",
        "daily 03:30 UTC",
        run_cleanup,
        trigger={"trigger": "cron", "hour": 3, "minute": 30},
        misfire_grace_seconds=6 * 3600,
    ),
)
