"""`readership jobs ...`, plugged into the Flask CLI group through an entry point."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from jobs.registry import load_jobs, run_job

jobs_group = AppGroup("jobs", help="List and run scheduled jobs.")


@jobs_group.command("list")
def list_jobs() -> None:
    """Show every job and its schedule."""
    for job in sorted(load_jobs().values(), key=lambda j: j.name):
        click.echo(f"{job.name:<20} {job.schedule:<28} {job.description}")


@jobs_group.command("run")
@click.argument("name")
def run(name: str) -> None:
    """Run one job now and exit."""
    jobs = load_jobs()
    if name not in jobs:
        raise click.BadParameter(
            f"unknown job {name!r}; known: {', '.join(sorted(jobs))}", param_hint="NAME"
        )
    summary = run_job(current_app._get_current_object(), name)  # type: ignore[attr-defined]
    click.echo(f"{name}: {summary}")
