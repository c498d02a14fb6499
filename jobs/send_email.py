"""`send-email`: deliver the transactional outbox — send what is due, then exit."""

from __future__ import annotations

from flask import Flask

from jobs.registry import Job, register
from webapp.core.clock import get_clock
from webapp.db import get_database
from webapp.outbox.gateway import get_mailer
from webapp.outbox.services import DeliveryCounts, deliver_pending

#: Messages claimed per round; each round reuses one SMTP connection.
BATCH_SIZE = 500


def run_send_email(app: Flask) -> str:
    """Send everything that is due, in rounds, until a round finds less than a full batch
    (so messages that fail again are left for their retry time instead of looping)."""
    database, mailer, clock = get_database(app), get_mailer(app), get_clock(app)
    total = DeliveryCounts()
    while True:
        counts = deliver_pending(database, mailer, clock.now(), limit=BATCH_SIZE)
        total += counts
        if counts.total < BATCH_SIZE:
            return str(total)


register(
    Job(
        "send-email",
        "Send queued transactional email that is due (retries with backoff)",
        "every minute",
        run_send_email,
        trigger={"trigger": "interval", "minutes": 1},
        misfire_grace_seconds=300,
        lease_minutes=15,
    )
)
