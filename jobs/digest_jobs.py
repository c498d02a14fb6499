"""`build-digests`: build the week's issues when their slot has come (checked every 15
minutes, so a scheduler that was down at the slot builds once when it is back)."""

from __future__ import annotations

from flask import Flask

from jobs.registry import Job
from webapp.core.clock import get_clock
from webapp.db import get_database
from webapp.digests.services import run_build
from webapp.outbox.services import get_mailer


def run_build_digests(app: Flask) -> str:
    """Build this slot's issue per language (a no-op for languages that have it)."""
    with get_database(app).session() as session:
        results = run_build(session, app, get_mailer(app), now=get_clock(app).now())
    return "; ".join(str(result) for result in results) or "no languages configured"


#: This module's jobs, gathered by `jobs.registry.load_jobs` (importing it registers nothing).
JOBS: tuple[Job, ...] = (
    Job(
        "build-digests",
        "Build the weekly digest issues (day, time and time zone in the digest settings)",
        "weekly, checked every 15 min",
        run_build_digests,
        trigger={"trigger": "interval", "minutes": 15},
        misfire_grace_seconds=3600,
        run_at_start=True,
    ),
)
