"""The Stripe jobs: nightly reconciliation and the yearly donor statements."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask

from jobs.registry import Job
from webapp.core.clock import get_clock
from webapp.db import get_database
from webapp.donations.services import (
    BooksContext,
    books_context,
    donation_config,
    get_gateway,
    reconcile_stripe,
)
from webapp.outbox.services import deliver_now, get_mailer


def run_reconcile(app: Flask) -> str:
    """Apply Stripe events the webhook missed, then send the receipts they produced."""
    clock = get_clock(app)
    database = get_database(app)
    made: list[BooksContext] = []

    def make_books() -> BooksContext:
        books = books_context(app, clock.now())
        made.append(books)
        return books

    lookback = timedelta(days=int(app.config.get("RECONCILE_LOOKBACK_DAYS", 3)))
    result = reconcile_stripe(
        database, get_gateway(app), make_books, now=clock.now(), lookback=lookback
    )
    queued = [message_id for books in made for message_id in books.queued]
    if queued:
        deliver_now(database, get_mailer(app), queued, clock.now())
    return str(result)


def run_yearly_statements(app: Flask) -> str:
    """Queue last calendar year's statement for every donor who gave (once per donor)."""
    from webapp.donations.services import queue_yearly_statements

    now = get_clock(app).now()
    year = int(app.config.get("STATEMENT_YEAR") or now.year - 1)
    with get_database(app).session() as session:
        sent = queue_yearly_statements(
            session, get_mailer(app), year, config=donation_config(app.config), now=now
        )
    return f"{sent} statements for {year} queued (the send-email job delivers them)"


#: This module's jobs, gathered by `jobs.registry.load_jobs` (importing it registers nothing).
JOBS: tuple[Job, ...] = (
    Job(
        "reconcile-stripe",
        "Apply Stripe events the webhook missed; settle old pending checkouts",
        "nightly 02:15 UTC",
        run_reconcile,
        trigger={"trigger": "cron", "hour": 2, "minute": 15},
        misfire_grace_seconds=6 * 3600,
    ),
    Job(
        "yearly-statements",
        "Email each donor a statement of last year's gifts (once per donor and year)",
        "yearly, 10 January 09:00 UTC",
        run_yearly_statements,
        trigger={"trigger": "cron", "month": 1, "day": 10, "hour": 9, "minute": 0},
        # Late is fine (a week): the statements are for last year.
        misfire_grace_seconds=7 * 24 * 3600,
        lease_minutes=120,
    ),
)
