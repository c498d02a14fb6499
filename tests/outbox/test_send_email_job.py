"""`readership jobs run send-email`: sends what is due and exits."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy.orm import Session

from jobs.cli import jobs_group
from jobs.registry import load_jobs
from jobs.send_email import run_send_email
from tests.helpers.smtp import SmtpSink
from tests.outbox.conftest import queue, reload
from webapp.core.clock import FrozenClock
from webapp.outbox.models import OutboxStatus


def test_job_is_registered() -> None:
    assert "send-email" in load_jobs()


def test_cli_sends_everything_due_and_exits(
    app: Flask,
    runner: FlaskCliRunner,
    db_session: Session,
    smtp_sink: SmtpSink,
    clock: FrozenClock,
) -> None:
    ids = [queue(db_session, app, clock.now(), to=f"r{i}@example.org").id for i in range(3)]
    later = queue(db_session, app, clock.now(), to="later@example.org")
    later.next_attempt_at = clock.now().replace(year=2030)  # backing off until then
    db_session.commit()

    # `readership jobs ...` comes from an entry point; the test runner calls the group itself.
    result = runner.invoke(jobs_group, ["run", "send-email"])

    assert result.exit_code == 0, result.output
    assert "send-email: outbox: sent 3, retry later 0, failed 0" in result.output
    assert len(smtp_sink.messages) == 3
    assert all(reload(db_session, i).status == OutboxStatus.SENT for i in ids)
    assert reload(db_session, later.id).status == OutboxStatus.PENDING


def test_job_stops_when_what_is_left_fails_again(
    app: Flask, db_session: Session, smtp_sink: SmtpSink, clock: FrozenClock
) -> None:
    smtp_sink.handler.data_reply = "451 4.3.0 busy"
    message = queue(db_session, app, clock.now())
    assert run_send_email(app).startswith("outbox: sent 0, retry later 1, failed 0;")
    assert reload(db_session, message.id).attempts == 1
