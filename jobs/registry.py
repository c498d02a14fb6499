"""Every job by its public name (`readership jobs run NAME`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
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


def load_jobs() -> Mapping[str, Job]:
    """Every job by name, read-only: the `JOBS` tuples of the job modules, in this order.

    Built on each call from those constants, so importing a job module registers nothing
    and no table is shared between callers. Two jobs with one name are a bug: `ValueError`.
    """
    from jobs import articles_jobs, cleanup, digest_jobs, send_email, stripe_jobs

    jobs: dict[str, Job] = {}
    for module in (articles_jobs, cleanup, digest_jobs, send_email, stripe_jobs):
        for job in module.JOBS:
            if job.name in jobs:
                raise ValueError(f"two jobs are named {job.name!r}")
            jobs[job.name] = job
    return MappingProxyType(jobs)


def run_job(app: Flask, name: str, jobs: Mapping[str, Job] | None = None) -> str:
    """Run one job by name (from `jobs`, every job by default) inside an app context;
    returns its summary."""
    jobs = load_jobs() if jobs is None else jobs
    if name not in jobs:
        raise KeyError(name)
    with app.app_context():
        summary = jobs[name].run(app)
    log.info("job %s: %s", name, summary)
    return summary
