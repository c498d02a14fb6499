"""`send-email`: deliver the transactional outbox and the digest issues being sent — what is
due, then exit. The scheduler starts it again every 15 seconds, so sending is continuous."""

from __future__ import annotations

from flask import Flask

from jobs.registry import Job
from webapp.core.clock import get_clock
from webapp.db import get_database
from webapp.digests.services import Worker, engine_settings
from webapp.outbox.services import DeliveryCounts, deliver_pending, get_mailer

#: Messages claimed per round; each round reuses one SMTP connection.
BATCH_SIZE = 500
#: Seconds a run keeps claiming digest batches; the next run carries on.
DIGEST_TIME_BUDGET = 300.0


def run_send_email(app: Flask) -> str:
    """Send everything that is due, in rounds, until a round finds less than a full batch
    (so messages that fail again are left for their retry time instead of looping)."""
    database, mailer, clock = get_database(app), get_mailer(app), get_clock(app)
    total = DeliveryCounts()
    while True:
        counts = deliver_pending(database, mailer, clock.now(), limit=BATCH_SIZE)
        total += counts
        if counts.total < BATCH_SIZE:
            break
    digest = Worker(
        database,
        mailer,
        secret=str(app.config["SECRET_KEY"]),
        now=clock.now,
        settings=engine_settings(app.config),
        time_budget=DIGEST_TIME_BUDGET,
    ).run()
    return f"outbox: {total}; {digest}"


#: This module's jobs, gathered by `jobs.registry.load_jobs` (importing it registers nothing).
JOBS: tuple[Job, ...] = (
    Job(
        "send-email",
        "Send queued email and digest issues that are due (retries with backoff)",
        "every 15 seconds",
        run_send_email,
        trigger={"trigger": "interval", "seconds": 15},
        misfire_grace_seconds=300,
        lease_minutes=15,
        run_at_start=True,
    ),
)
