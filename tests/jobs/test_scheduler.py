"""The scheduler: every job on a real trigger with coalescing, one instance and a real misfire
grace time; a database lock so two processes never run a job at once; runs recorded."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from jobs.registry import Job, load_jobs
from jobs.scheduler import AlreadyRunning, build_scheduler, next_run, run_locked
from webapp.cli import main
from webapp.scheduling.models import JobRun

started = threading.Event()
release_job = threading.Event()


def _slow(app: Flask) -> str:
    started.set()
    release_job.wait(10)
    return "slow job done"


@pytest.fixture
def slow_job() -> Iterator[Mapping[str, Job]]:
    started.clear()
    release_job.clear()
    yield {**load_jobs(), "test-slow": Job("test-slow", "a job that waits", "never", _slow)}
    release_job.set()


def test_two_processes_never_run_a_job_at_once(
    app: Flask, db_session: Session, slow_job: Mapping[str, Job]
) -> None:
    jobs, slow_job_name = slow_job, "test-slow"
    results: list[str] = []
    first = threading.Thread(
        target=lambda: results.append(run_locked(app, slow_job_name, "one", jobs))
    )
    first.start()
    assert started.wait(10)
    with pytest.raises(AlreadyRunning):
        run_locked(app, slow_job_name, "two", jobs)  # the second scheduler process: nothing runs
    release_job.set()
    first.join(10)
    assert results == ["slow job done"]
    # Free again once the first finished.
    assert run_locked(app, slow_job_name, "two", jobs) == "slow job done"
    runs = db_session.scalars(select(JobRun).where(JobRun.name == slow_job_name)).all()
    assert len(runs) == 2 and all(run.ok and run.finished_at for run in runs)


def test_a_failed_run_is_recorded_and_the_lock_freed(app: Flask, db_session: Session) -> None:
    def broken(app: Flask) -> str:
        raise RuntimeError("feed server on fire")

    jobs = {**load_jobs(), "test-broken": Job("test-broken", "fails", "never", broken)}
    with pytest.raises(RuntimeError):
        run_locked(app, "test-broken", "one", jobs)
    with pytest.raises(RuntimeError):
        run_locked(app, "test-broken", "two", jobs)  # not blocked by a lock left behind
    runs = db_session.scalars(select(JobRun).where(JobRun.name == "test-broken")).all()
    assert [run.ok for run in runs] == [False, False]
    assert "feed server on fire" in runs[0].summary


def test_every_job_is_scheduled_with_coalescing_one_instance_and_a_grace_time(
    app: Flask,
) -> None:
    scheduler = build_scheduler(app, "holder")
    scheduled = {job.id: job for job in scheduler.get_jobs()}
    assert {
        "cleanup",
        "send-email",
        "import-articles",
        "reconcile-stripe",
        "yearly-statements",
    } <= set(scheduled)
    for job in scheduled.values():
        assert job.coalesce is True and job.max_instances == 1
        assert job.misfire_grace_time >= 300


def test_next_runs_follow_the_triggers() -> None:
    jobs = load_jobs()
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert next_run(jobs["cleanup"], now) == datetime(2026, 11, 29, 3, 30, tzinfo=UTC)
    assert next_run(jobs["reconcile-stripe"], now) == datetime(2026, 11, 29, 2, 15, tzinfo=UTC)
    assert next_run(jobs["yearly-statements"], now) == datetime(2027, 1, 10, 9, 0, tzinfo=UTC)


def test_jobs_list_shows_next_and_last_runs(app: Flask, runner: FlaskCliRunner) -> None:
    assert runner.invoke(main, ["jobs", "run", "cleanup"]).exit_code == 0
    listing = runner.invoke(main, ["jobs", "list"])
    assert listing.exit_code == 0
    cleanup = next(line for line in listing.output.splitlines() if line.startswith("cleanup"))
    assert "03:30" in cleanup and " ok: expired" in cleanup
    assert "never" in next(
        line for line in listing.output.splitlines() if line.startswith("yearly-statements")
    )


def test_the_job_table_is_read_only_and_importing_a_job_module_adds_nothing() -> None:
    from jobs import cleanup

    jobs = load_jobs()
    assert list(jobs) == [
        "import-articles",
        "cleanup",
        "build-digests",
        "send-email",
        "reconcile-stripe",
        "yearly-statements",
    ]
    with pytest.raises(TypeError):
        jobs["extra"] = jobs["cleanup"]  # type: ignore[index]
    importlib.reload(cleanup)
    assert list(load_jobs()) == list(jobs)
