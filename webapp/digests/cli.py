"""`readership digests ...`: list, build, approve, send (with a progress bar), pause, resume."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.core.clock import get_clock
from webapp.db import get_database
from webapp.digests.building import get_digest_settings, next_slot
from webapp.digests.models import DeliveryStatus, DigestDelivery, DigestIssue, IssueStatus
from webapp.digests.services import (
    IssueStateError,
    SendCounts,
    Worker,
    approve_issue,
    engine_settings,
    issue_progress,
    latest_issues,
    pause_issue,
    resume_issue,
    run_build,
)
from webapp.outbox.services import get_mailer

digests_group = AppGroup("digests", help="Build, approve and send the weekly digest.")


def _app() -> Flask:
    return current_app._get_current_object()  # type: ignore[attr-defined]


@digests_group.command("list")
@click.option("--limit", default=20, show_default=True, help="How many issues, newest first.")
def list_issues(limit: int) -> None:
    """Show the latest issues with their status and delivery counts."""
    app = _app()
    now = get_clock(app).now()
    with get_database(app).session() as session:
        settings = get_digest_settings(session)
        click.echo(
            f"next issues built {next_slot(settings, now):%Y-%m-%d %H:%M} UTC "
            f"({'sent automatically' if settings.auto_send else 'waiting for approval'})"
        )
        issues = latest_issues(session, limit)
        if not issues:
            click.echo("no issues yet (readership digests build)")
            return
        click.echo(
            f"{'id':>5} {'lang':<4} {'status':<8} {'built (UTC)':<16} {'sent':>7} "
            f"{'failed':>6} {'left':>7}  subject / note"
        )
        for issue in issues:
            progress = issue_progress(session, issue, now)
            detail = issue.subject if issue.status != IssueStatus.SKIPPED else issue.note
            click.echo(
                f"{issue.id:>5} {issue.language:<4} {issue.status:<8} "
                f"{issue.created_at:%Y-%m-%d %H:%M} {progress.sent:>7} {progress.failed:>6} "
                f"{progress.pending:>7}  {detail[:70]}"
            )


@digests_group.command("build")
@click.option("--force", is_flag=True, help="Build again even if this week's issue exists.")
def build(force: bool) -> None:
    """Build this week's issue in every language (what the weekly job does)."""
    app = _app()
    with get_database(app).session() as session:
        results = run_build(session, app, get_mailer(app), now=get_clock(app).now(), force=force)
    for result in results:
        click.echo(str(result))


def _issue_or_fail(session: Session, issue_id: int) -> DigestIssue:
    issue = session.get(DigestIssue, issue_id)
    if issue is None:
        raise click.ClickException(f"no issue {issue_id}")
    return issue


@digests_group.command("approve")
@click.argument("issue_id", type=int)
def approve(issue_id: int) -> None:
    """Approve a draft: it goes to every confirmed reader of its language."""
    app = _app()
    with get_database(app).session() as session:
        issue = _issue_or_fail(session, issue_id)
        try:
            recipients = approve_issue(session, issue, now=get_clock(app).now())
        except IssueStateError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
    click.echo(
        f"issue {issue_id} approved for {recipients} recipients; "
        "the send-email job (or `readership digests send`) delivers it"
    )


@digests_group.command("pause")
@click.argument("issue_id", type=int)
def pause(issue_id: int) -> None:
    """Stop sending an issue; `resume` carries on where it stopped."""
    _change(issue_id, pause=True)


@digests_group.command("resume")
@click.argument("issue_id", type=int)
def resume(issue_id: int) -> None:
    """Carry on sending a paused issue."""
    _change(issue_id, pause=False)


def _change(issue_id: int, *, pause: bool) -> None:
    app = _app()
    now = get_clock(app).now()
    with get_database(app).session() as session:
        issue = _issue_or_fail(session, issue_id)
        try:
            if pause:
                pause_issue(session, issue, now=now, note="paused from the command line")
            else:
                resume_issue(session, issue, now=now)
        except IssueStateError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
    click.echo(f"issue {issue_id} {'paused' if pause else 'resumed'}")


@digests_group.command("send")
@click.option("--issue", "issue_id", type=int, default=None, help="Only this issue.")
@click.option("--limit", type=int, default=None, help="Stop after this many messages.")
def send(issue_id: int | None, limit: int | None) -> None:
    """Send what is due now, with a progress bar. Several may run at once (PostgreSQL)."""
    app = _app()
    database = get_database(app)
    with database.session() as session:
        query = (
            select(func.count())
            .select_from(DigestDelivery)
            .where(
                DigestDelivery.status == DeliveryStatus.PENDING,
                DigestDelivery.issue_id.in_(
                    select(DigestIssue.id).where(DigestIssue.status == IssueStatus.SENDING)
                ),
            )
        )
        if issue_id is not None:
            query = query.where(DigestDelivery.issue_id == issue_id)
        pending = int(session.scalar(query) or 0)
    total = min(pending, limit) if limit is not None else pending
    with click.progressbar(length=total, label="sending", show_pos=True, show_eta=True) as bar:
        done = 0

        def advance(counts: SendCounts) -> None:
            nonlocal done
            bar.update(counts.handled - done)
            done = counts.handled

        counts = Worker(
            database,
            get_mailer(app),
            secret=str(app.config["SECRET_KEY"]),
            now=get_clock(app).now,
            settings=engine_settings(app.config),
            issue_id=issue_id,
            on_progress=advance,
            limit=limit,
        ).run()
    click.echo(str(counts))
