"""The clean-up's bulk delete re-checks what it selected on: a pending signup that becomes
live while the job runs (confirmed, or a fresh confirmation asked for) is never deleted.

The interleaving is made deterministic with an engine hook: just before the job's first
write statement, a reader acts through the real web app on its own connection and commits.
The old code (select the stale ids, then delete by id) deleted that reader.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from jobs.cleanup import run_cleanup
from tests.helpers.html import csrf_token, first_url_containing
from tests.helpers.smtp import SmtpSink
from tests.subscribers.factories import get_subscriber, one_email_to, path_of, sign_up
from webapp.core.clock import FrozenClock
from webapp.db import get_database
from webapp.subscribers.models import ConsentRecord, SubscriberEvent


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    # Confirm links that outlive the signup's keeping time, so a reader can still confirm
    # at the moment the job finds the signup stale (staff confirming, or a long link).
    return {**app_config, "CONFIRMATION_MAX_AGE_HOURS": 24 * 30}


@contextmanager
def before_first_write(app: Flask, action: Callable[[], None]) -> Iterator[list[str]]:
    """Run `action` once, just before the first INSERT/UPDATE/DELETE any connection sends;
    yields the list of statements seen up to then (for the assertion message)."""
    engine = get_database(app).engine
    seen: list[str] = []
    fired = False

    def hook(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        nonlocal fired
        if fired:
            return
        seen.append(statement.split(None, 1)[0].upper())
        if seen[-1] in ("INSERT", "UPDATE", "DELETE"):
            fired = True  # before the action: its own statements must not fire it again
            action()

    event.listen(engine, "before_cursor_execute", hook)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", hook)
    assert fired, f"the job wrote nothing: {seen}"


def pending_with_link(client: FlaskClient, smtp_sink: SmtpSink, address: str) -> str:
    sign_up(client, address)
    text = one_email_to(smtp_sink, address).part("text/plain")
    return path_of(first_url_containing(text, "/subscribe/confirm/"))


def counts(session: Session, subscriber_id: int) -> tuple[int, int]:
    session.expire_all()
    consents = session.scalar(
        select(func.count())
        .select_from(ConsentRecord)
        .where(ConsentRecord.subscriber_id == subscriber_id)
    )
    events = session.scalar(
        select(func.count())
        .select_from(SubscriberEvent)
        .where(SubscriberEvent.subscriber_id == subscriber_id)
    )
    return int(consents or 0), int(events or 0)


def test_a_signup_confirmed_while_the_cleanup_runs_survives(
    app: Flask, db_session: Session, smtp_sink: SmtpSink, clock: FrozenClock
) -> None:
    client = app.test_client()
    confirm_path = pending_with_link(client, smtp_sink, "late@example.com")
    pending_with_link(client, smtp_sink, "gone@example.com")
    clock.advance(days=8)  # both stale now (7 days)
    page = client.get(confirm_path)
    assert page.status_code == 200

    def reader_confirms() -> None:
        answer = client.post(confirm_path, data={"csrf_token": csrf_token(page.text)})
        assert answer.status_code == 200, answer.status_code

    with before_first_write(app, reader_confirms):
        result = run_cleanup(app)

    late = get_subscriber(db_session, "late@example.com")
    assert late is not None, "a reader confirmed during the clean-up was deleted"
    assert late.status == "confirmed"
    consents, events = counts(db_session, late.id)
    assert consents == 1 and events >= 3  # signup, confirmation_sent, confirmed: all kept
    # The signup that stayed stale went, as before.
    assert get_subscriber(db_session, "gone@example.com") is None
    assert result.startswith("expired 1 pending signups")


def test_a_signup_asked_again_while_the_cleanup_runs_survives(
    app: Flask, db_session: Session, smtp_sink: SmtpSink, clock: FrozenClock
) -> None:
    client = app.test_client()
    pending_with_link(client, smtp_sink, "again@example.com")
    clock.advance(days=8)
    signup_page = client.get("/subscribe")

    def reader_asks_again() -> None:
        answer = client.post(
            "/subscribe",
            data={
                "email": "again@example.com",
                "language": "en",
                "name": "",
                "csrf_token": csrf_token(signup_page.text),
            },
        )
        assert answer.status_code in (200, 302, 303), answer.status_code

    with before_first_write(app, reader_asks_again):
        result = run_cleanup(app)

    again = get_subscriber(db_session, "again@example.com")
    assert again is not None, "a signup given a fresh keeping time was deleted"
    assert again.status == "pending"
    assert counts(db_session, again.id)[0] == 2  # both consents kept
    assert result.startswith("expired 0 pending signups")
    # A fresh confirmation email went out, and its row was not scrubbed from the outbox.
    one_email_to(smtp_sink, "again@example.com", count=2)


def test_a_confirm_that_reads_first_wins_over_the_cleanup(
    app: Flask, db_session: Session, smtp_sink: SmtpSink, clock: FrozenClock
) -> None:
    """The other order: the reader's POST has read the signup when the clean-up starts.

    The clean-up runs in a thread as soon as the confirm has read the subscriber row. The old
    confirm read without a lock, so the clean-up deleted the row under it and the confirm's
    UPDATE matched nothing (a 500). Now a link's POST reads the row locked as a writer: the
    clean-up waits, then finds a confirmed reader, who is not stale."""
    client = app.test_client()
    confirm_path = pending_with_link(client, smtp_sink, "reads-first@example.com")
    clock.advance(days=8)
    page = client.get(confirm_path)
    engine = get_database(app).engine
    outcome: dict[str, Any] = {}

    def cleanup() -> None:
        try:
            outcome["result"] = run_cleanup(app)
        except Exception as exc:  # reported by the assertion below
            outcome["error"] = exc

    worker = threading.Thread(target=cleanup)
    started = False

    def hook(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        nonlocal started
        if not started and "FROM subscribers" in statement:
            started = True
            worker.start()
            worker.join(timeout=1.5)  # the old code: the clean-up deletes and commits here

    event.listen(engine, "after_cursor_execute", hook)
    try:
        answer = client.post(confirm_path, data={"csrf_token": csrf_token(page.text)})
    finally:
        event.remove(engine, "after_cursor_execute", hook)
    worker.join(timeout=30)
    assert answer.status_code == 200, answer.status_code
    assert outcome.get("error") is None, outcome
    assert outcome["result"].startswith("expired 0 pending signups"), outcome
    reader = get_subscriber(db_session, "reads-first@example.com")
    assert reader is not None and reader.status == "confirmed"
