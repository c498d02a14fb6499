"""Every job by its public name (`readership jobs run NAME`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Flask

log = logging.getLogger("readership.jobs")


@dataclass(frozen=True)
class Job:
    """One unit of scheduled work."""

    #: Public name, used on the command line and in the job log.
    name: str
    #: What it does, shown by `readership jobs list`.
    description: str
    #: Human description of its schedule (the scheduler holds the real trigger).
    schedule: str
    #: Runs the job once inside an app context and returns a one-line summary.
    run: Callable[[Flask], str]
    #: APScheduler trigger: {"trigger": "interval", "hours": 1} or {"trigger": "cron", ...}.
    trigger: Mapping[str, Any] = field(default_factory=lambda: {"trigger": "interval", "hours": 1})
    #: How late a run may still start (a scheduler that was down runs it once when back).
    misfire_grace_seconds: int = 3600
    #: How long its database lock lasts before a crashed holder is presumed dead.
    lease_minutes: int = 60
    #: Also run as soon as the scheduler starts (work that must resume after a restart).
    run_at_start: bool = False


JOBS: dict[str, Job] = {}


def register(job: Job) -> Job:
    """Add a job to the registry (module import time is fine: it only fills a dict)."""
    JOBS[job.name] = job
    return job


def load_jobs() -> dict[str, Job]:
    """Import every job module so each registers itself, then return the registry."""
    from jobs import (
        articles_jobs,  # noqa: F401
        cleanup,  # noqa: F401
        digest_jobs,  # noqa: F401
        send_email,  # noqa: F401
        stripe_jobs,  # noqa: F401
    )

    return JOBS


def run_job(app: Flask, name: str) -> str:
    """Run one job by name inside an app context; returns its summary."""
    jobs = load_jobs()
    if name not in jobs:
        raise KeyError(name)
    with app.app_context():
        summary = jobs[name].run(app)
    log.info("job %s: %s", name, summary)
    return summary
