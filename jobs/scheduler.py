"""The scheduler process: APScheduler 3 running every job on its trigger, each run guarded by
a database lock so a second scheduler process (or a `jobs run` by hand) never runs a job twice
at once, and recorded as a `JobRun` row.

One scheduler process per installation is the design (APScheduler's job store is never
shared); the lock makes an accidental second one harmless. Settings: `coalesce` (a backlog of
missed runs runs once), `max_instances=1`, and a real `misfire_grace_time` per job (the
default of one second would silently drop a run the process was too busy or down for).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from flask import Flask
from sqlalchemy import select

from jobs.registry import Job, load_jobs, run_job
from webapp.core.clock import get_clock
from webapp.db import get_database
from webapp.scheduling.models import JobRun
from webapp.scheduling.services import acquire, release

log = logging.getLogger("readership.scheduler")


def holder_name() -> str:
    """This process, as named in job locks."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class AlreadyRunning(Exception):
    """Another process holds the job's lock."""


def run_locked(app: Flask, name: str, holder: str, jobs: Mapping[str, Job] | None = None) -> str:
    """Run job `name` (from `jobs`, every job by default) once under its database lock,
    recording the run; raises `AlreadyRunning` when another process holds the lock (nothing
    is run)."""
    jobs = load_jobs() if jobs is None else jobs
    job = jobs[name]
    database = get_database(app)
    clock = get_clock(app)
    with database.session() as session:
        if not acquire(
            session, name, holder, now=clock.now(), lease=timedelta(minutes=job.lease_minutes)
        ):
            raise AlreadyRunning(name)
        run = JobRun(name=name, started_at=clock.now())
        session.add(run)
        session.commit()
        run_id = run.id
    ok, summary = False, ""
    try:
        summary = run_job(app, name, jobs)
        ok = True
        return summary
    except Exception as exc:
        summary = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        with database.session() as session:
            row = session.get(JobRun, run_id)
            if row is not None:
                row.finished_at, row.ok, row.summary = clock.now(), ok, summary[:5000]
            session.commit()
            release(session, name, holder)


def make_trigger(job: Job) -> Any:
    """The APScheduler trigger of a job (UTC)."""
    spec = dict(job.trigger)
    kind = spec.pop("trigger")
    if kind == "cron":
        return CronTrigger(timezone="UTC", **spec)
    return IntervalTrigger(timezone="UTC", **spec)


def next_run(job: Job, now: datetime) -> datetime | None:
    """When the job's trigger fires next after `now`."""
    fire_time: datetime | None = make_trigger(job).get_next_fire_time(None, now)
    return fire_time


def last_runs(app: Flask) -> dict[str, JobRun]:
    """The latest run of each job."""
    with get_database(app).session() as session:
        rows = session.scalars(select(JobRun).order_by(JobRun.id))
        latest = {row.name: row for row in rows}
        session.expunge_all()
    return latest


def _scheduled(app: Flask, name: str, holder: str) -> None:
    try:
        summary = run_locked(app, name, holder)
        log.info("job %s: %s", name, summary)
    except AlreadyRunning:
        log.info("job %s skipped: another process is running it", name)
    except Exception:
        log.exception("job %s failed", name)


def build_scheduler(
    app: Flask, holder: str, only: Collection[str] | None = None
) -> BlockingScheduler:
    """A scheduler with every registered job (or those named in `only`) on its trigger;
    jobs marked `run_at_start` also run once right away."""
    scheduler = BlockingScheduler(timezone="UTC")
    for job in load_jobs().values():
        if only and job.name not in only:
            continue
        extra: dict[str, Any] = {}
        if job.run_at_start:
            extra["next_run_time"] = datetime.now(UTC)
        scheduler.add_job(
            _scheduled,
            trigger=make_trigger(job),
            args=(app, job.name, holder),
            id=job.name,
            name=job.name,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=job.misfire_grace_seconds,
            replace_existing=True,
            **extra,
        )
    return scheduler
