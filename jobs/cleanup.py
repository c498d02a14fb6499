"""Daily clean-up: expire pending signups that were never confirmed (and, later, old raw data)."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask

from jobs.registry import Job, register
from webapp.core.clock import get_clock
from webapp.db import get_database
from webapp.subscribers.services import expire_pending_signups


def run_cleanup(app: Flask) -> str:
    """Remove what is past its keeping time; returns what was removed."""
    now = get_clock(app).now()
    max_age = timedelta(days=app.config["PENDING_SIGNUP_EXPIRY_DAYS"])
    with get_database(app).session() as session:
        expired = expire_pending_signups(session, now=now, max_age=max_age)
        session.commit()
    return f"expired {expired} pending signups"


register(Job("cleanup", "Expire unconfirmed signups and old raw data", "daily 03:30", run_cleanup))
