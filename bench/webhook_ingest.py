"""webhook_ingest: signed Stripe events into `POST /stripe/webhook`, 10% of them twice.

gunicorn with the real app (2 sync workers, 127.0.0.1) on a fresh SQLite database migrated
with `readership db upgrade`. Before the timed phase, N pending donations (with their
donors and Checkout Session ids) are inserted directly. Then one `checkout.session.completed`
per donation is posted, signed exactly as Stripe signs, and one event in ten is sent a
second time (same id, shuffled so some duplicates follow soon and some much later). Every
answer must be 200; afterwards there must be exactly N paid donations, N event rows and N
receipts queued.

Two variants: `DELIVER_EMAIL_IMMEDIATELY=false` (the receipt is queued in the outbox and
sent by the send-email job: the ingest itself, measured against the target) and the default
(the receipt also goes over SMTP to a local sink inside the request).

QUALITY.md target: >= 300 events/s on SQLite.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, func, insert, select

from bench.common import SmtpSink, scratch_database
from bench.http_load import HttpClient, closed_loop
from bench.report import BenchResult
from bench.server import gunicorn
from bench.signup_load import _app_environment, migrate

NAME = "webhook_ingest"
TARGET_EVENTS_PER_SECOND = 300.0
SECRET = "whsec_bench_ingest"


@dataclass(frozen=True)
class IngestSizes:
    """How many donations (distinct events) each variant ingests."""

    donations: int = 3000
    duplicate_share: float = 0.10
    clients: int = 8
    max_seconds: float = 60.0


QUICK = IngestSizes(donations=300, clients=4, max_seconds=20.0)


def _seed(database_url: str, count: int, tag: str) -> list[tuple[int, str]]:
    """Insert `count` donors and pending donations; returns (donation id, session id)."""
    from webapp.donations.models import Donation, Donor

    engine = create_engine(database_url)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(Donor),
            [
                {
                    "email": f"ingest-{tag}-{i}@readers-bench.org",
                    "name": "",
                    "language": "en",
                    "stripe_customer_id": f"cus_{tag}_{i}",
                    "created_at": now,
                }
                for i in range(count)
            ],
        )
        donor_ids = list(conn.scalars(select(Donor.id).order_by(Donor.id)))
        conn.execute(
            insert(Donation),
            [
                {
                    "donor_id": donor_id,
                    "kind": "one_time",
                    "status": "pending",
                    "frequency": "one_time",
                    "amount_minor": 1000,
                    "fee_covered_minor": 0,
                    "currency": "EUR",
                    "refunded_minor": 0,
                    "disputed_minor": 0,
                    "source": "",
                    "utm_source": "",
                    "utm_medium": "",
                    "utm_campaign": "",
                    "utm_content": "",
                    "utm_term": "",
                    "language": "en",
                    "is_anonymous": False,
                    "wants_newsletter": False,
                    "note": "",
                    "stripe_checkout_session_id": f"cs_{tag}_{i}",
                    "created_at": now,
                }
                for i, donor_id in enumerate(donor_ids)
            ],
        )
        rows = conn.execute(
            select(Donation.id, Donation.stripe_checkout_session_id, Donor.stripe_customer_id)
            .join(Donor, Donor.id == Donation.donor_id)
            .order_by(Donation.id)
        ).all()
    engine.dispose()
    return [(row[0], f"{row[1]}|{row[2]}") for row in rows]


def _events(seeded: list[tuple[int, str]], duplicate_share: float, tag: str) -> list[bytes]:
    """One completed-checkout event per donation plus the duplicates, shuffled."""
    bodies = []
    for donation_id, ids in seeded:
        session_id, customer = ids.split("|")
        bodies.append(
            json.dumps(
                {
                    "id": f"evt_{tag}_{donation_id}",
                    "object": "event",
                    "type": "checkout.session.completed",
                    "created": int(time.time()),
                    "data": {
                        "object": {
                            "id": session_id,
                            "object": "checkout.session",
                            "mode": "payment",
                            "status": "complete",
                            "payment_status": "paid",
                            "amount_total": 1000,
                            "currency": "eur",
                            "customer": customer,
                            "payment_intent": f"pi_{tag}_{donation_id}",
                            "metadata": {"donation_id": str(donation_id)},
                        }
                    },
                }
            ).encode()
        )
    rng = random.Random(42)
    duplicates = rng.sample(bodies, int(len(bodies) * duplicate_share))
    stream = bodies + duplicates
    rng.shuffle(stream)
    return stream


def _signature(body: bytes) -> str:
    stamp = int(time.time())
    mac = hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={mac}"


class IngestScenario:
    """Each request posts the next event of the stream (signed at send time)."""

    def __init__(self, stream: list[bytes]) -> None:
        self.stream = stream

    def prepare(self, client: HttpClient) -> None:
        """Nothing to fetch first: Stripe posts straight away."""

    def send(self, client: HttpClient, key: str) -> str:
        body = self.stream[int(key.rsplit("-", 1)[-1])]
        status, _ = client.request(
            "POST",
            "/stripe/webhook",
            body,
            {
                "Content-Type": "application/json",
                "Stripe-Signature": _signature(body),
            },
        )
        return "ok" if status == 200 else str(status)


def _variant(
    sizes: IngestSizes, immediate: bool, result: BenchResult, server_url: str | None = None
) -> float:
    """Run one variant (on SQLite, or on a scratch database of `server_url`); add its lines
    to `result`; return events/s."""
    from webapp.donations.models import Donation, StripeEvent
    from webapp.outbox.models import OutboxMessage

    tag = uuid.uuid4().hex[:6]
    backend = "postgresql" if server_url else "sqlite"
    label = ("SMTP in request" if immediate else "receipts queued") + (
        ", PostgreSQL" if server_url else ""
    )
    with (
        tempfile.TemporaryDirectory(prefix="readership-bench-ingest-") as tmp,
        SmtpSink() as sink,
        scratch_database(backend, Path(tmp), server_url, label="ingest") as database_url,
    ):
        workdir = Path(tmp)
        env = _app_environment(workdir, sink.url)
        env["DATABASE_URL"] = database_url
        env["STRIPE_WEBHOOK_SECRET"] = SECRET
        env["DELIVER_EMAIL_IMMEDIATELY"] = "true" if immediate else "false"
        migrate(env, workdir)
        seeded = _seed(env["DATABASE_URL"], sizes.donations, tag)
        stream = _events(seeded, sizes.duplicate_share, tag)
        with gunicorn(
            "webapp:create_app()", env=env, workdir=workdir, ready_path="/healthz"
        ) as server:
            stats = closed_loop(
                lambda: HttpClient("127.0.0.1", server.port),
                IngestScenario(stream),
                phase=f"ingest-{label}",
                clients=sizes.clients,
                requests=len(stream),
                max_seconds=sizes.max_seconds,
                warmup=0,
            )
        engine = create_engine(env["DATABASE_URL"])
        with engine.connect() as conn:
            paid = conn.scalar(
                select(func.count()).select_from(Donation).where(Donation.status == "paid")
            )
            events = conn.scalar(select(func.count()).select_from(StripeEvent))
            receipts = conn.scalar(select(func.count()).select_from(OutboxMessage))
        engine.dispose()
    errors = sum(stats.errors.values())
    sent = stats.requests
    complete = not stats.capped
    ok = complete and errors == 0 and paid == events == receipts == sizes.donations
    result.add(
        f"ingest ({label}): events/s, 10% duplicates",
        stats.rps,
        "ev/s",
        target=None if immediate else f">= {TARGET_EVENTS_PER_SECOND:g}",
        ok=None if immediate else stats.rps >= TARGET_EVENTS_PER_SECOND,
    )
    result.add(f"ingest ({label}): p99", stats.p99_ms, "ms")
    result.add(
        f"ingest ({label}): paid donations (events, receipts equal)",
        float(paid or 0),
        "",
        target=f"= {sizes.donations}",
        ok=ok,
    )
    result.details[label] = stats.summary() | {
        "posted": sent,
        "paid": paid,
        "event_rows": events,
        "receipts": receipts,
        "capped": stats.capped,
    }
    if not ok:
        raise RuntimeError(
            f"webhook ingest ({label}) was not exact: paid={paid} "
            f"events={events} receipts={receipts} errors={stats.errors}"
        )
    return float(stats.rps)


def run(sizes: IngestSizes = IngestSizes(), database_url: str | None = None) -> BenchResult:
    """Both variants on SQLite, one after the other; with a PostgreSQL `database_url`, the
    queued-receipts variant on PostgreSQL too."""
    result = BenchResult(NAME, params=asdict(sizes))
    result.details = {}
    _variant(sizes, immediate=False, result=result)
    _variant(sizes, immediate=True, result=result)
    if database_url and database_url.startswith("postgresql"):
        _variant(sizes, immediate=False, result=result, server_url=database_url)
    return result
