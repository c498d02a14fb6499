"""Pieces several benchmarks share: a counting SMTP sink and scratch databases."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy.engine import make_url

# The test suite's helpers are the one copy of these; the benchmarks run from the repo root.
from tests.helpers.postgres import scratch_database as scratch_postgres_database
from tests.helpers.smtp import free_port

#: The repository root (the folder holding `webapp/` and `bench/`).
REPO_ROOT = Path(__file__).resolve().parent.parent


class _CountingHandler:
    """Accepts every message and only counts it: the app's sending is what is measured."""

    def __init__(self) -> None:
        self.count = 0
        self.recipients: set[str] = set()
        self.lock = threading.Lock()

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        with self.lock:
            self.count += 1
            self.recipients.update(address.lower() for address in envelope.rcpt_tos)
        return "250 Message accepted"


class SmtpSink:
    """A real aiosmtpd server on 127.0.0.1 in this process that counts what it receives.

    Use as a context manager; `url` is the `SMTP_URL` to give the app.
    """

    def __init__(self) -> None:
        self.handler = _CountingHandler()
        self.port = free_port()
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, decode_data=False
        )

    @property
    def url(self) -> str:
        """`smtp://127.0.0.1:PORT`."""
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def received(self) -> int:
        """Messages accepted so far."""
        with self.handler.lock:
            return self.handler.count

    def received_by(self, addresses: set[str]) -> int:
        """How many of `addresses` received at least one message."""
        with self.handler.lock:
            return len(self.handler.recipients & {a.lower() for a in addresses})

    def wait_for(self, count: int, timeout: float) -> int:
        """Wait up to `timeout` seconds until `count` messages arrived; returns the count."""
        deadline = time.monotonic() + timeout
        while self.received < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.received

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.controller.stop()


def is_postgres_url(url: str | None) -> bool:
    """True for a `postgresql...://` SQLAlchemy URL."""
    return bool(url) and make_url(str(url)).get_backend_name() == "postgresql"


@contextmanager
def scratch_database(
    kind: str, workdir: Path, server_url: str | None = None, label: str = "bench"
) -> Iterator[str]:
    """A new, empty database for one measurement; yields its SQLAlchemy URL.

    `kind` "sqlite": a fresh file in `workdir`. `kind` "postgresql": a database created on
    the server of `server_url` (the connecting role needs CREATEDB) and dropped afterwards;
    the database named in `server_url` itself is never written to.
    """
    if kind == "sqlite":
        path = workdir / f"{label}-{uuid.uuid4().hex[:8]}.sqlite3"
        try:
            yield f"sqlite:///{path}"
        finally:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    if kind != "postgresql" or not server_url:
        raise ValueError(f"unknown database kind {kind!r} (PostgreSQL needs a server URL)")
    with scratch_postgres_database(server_url, prefix=label) as url:
        yield url
