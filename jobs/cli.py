"""`readership jobs ...`, plugged into the Flask CLI group through an entry point."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from jobs.registry import load_jobs

jobs_group = AppGroup("jobs", help="List and run scheduled jobs.")


@jobs_group.command("list")
def list_jobs() -> None:
    """Show every job, its schedule, its next run and how its last run went."""
    from jobs.scheduler import last_runs, next_run
    from webapp.core.clock import get_clock

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    now = get_clock(app).now()
    runs = last_runs(app)
    click.echo(f"{'job':<20} {'schedule':<30} {'next run (UTC)':<17} last run")
    for job in sorted(load_jobs().values(), key=lambda j: j.name):
        upcoming = next_run(job, now)
        run = runs.get(job.name)
        last = "never"
        if run is not None:
            state = "ok" if run.ok else ("running" if run.finished_at is None else "FAILED")
            last = f"{run.started_at:%Y-%m-%d %H:%M} {state}: {run.summary[:60]}"
        click.echo(
            f"{job.name:<20} {job.schedule:<30} {upcoming:%Y-%m-%d %H:%M} {last}"
            if upcoming
            else f"{job.name} -"
        )
        click.echo(f"{'':<20} {job.description}")


@jobs_group.command("run")
@click.argument("name")
def run(name: str) -> None:
    """Run one job now and exit."""
    jobs = load_jobs()
    if name not in jobs:
        raise click.BadParameter(
            f"unknown job {name!r}; known: {', '.join(sorted(jobs))}", param_hint="NAME"
        )
    from jobs.scheduler import AlreadyRunning, holder_name, run_locked

    try:
        summary = run_locked(current_app._get_current_object(), name, holder_name())  # type: ignore[attr-defined]
    except AlreadyRunning:
        raise click.ClickException(f"{name} is running in another process; try later") from None
    click.echo(f"{name}: {summary}")


@click.command("scheduler")
@click.option(
    "--only",
    multiple=True,
    metavar="JOB",
    help="Run only this job (repeatable), e.g. a second host that only sends email.",
)
@with_appcontext
def scheduler_command(only: tuple[str, ...]) -> None:
    """Run every job on its schedule until stopped (one process per installation)."""
    from jobs.scheduler import build_scheduler, holder_name

    unknown = sorted(set(only) - set(load_jobs()))
    if unknown:
        raise click.BadParameter(f"unknown job(s): {', '.join(unknown)}", param_hint="--only")
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    holder = holder_name()
    scheduler = build_scheduler(app, holder, only=set(only) or None)
    names = sorted(only) if only else sorted(load_jobs())
    click.echo(f"scheduler {holder} started; jobs: {', '.join(names)}", err=False)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        scheduler.shutdown(wait=False)
