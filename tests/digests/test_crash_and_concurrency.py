"""Real processes: a worker killed with SIGKILL half way and restarted, two workers sending
one issue at once, and two schedulers started at once. The SMTP sink's log is checked
against the delivery rows: everyone gets the issue, nobody twice (except, at most, the one
message in flight when the worker was killed)."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

from tests.digests.factories import approved_issue, issue_in, statuses
from tests.helpers.processes import cli
from tests.helpers.smtp import SmtpSink
from webapp.core.clock import FrozenClock
from webapp.digests.models import IssueStatus


def received(sink: SmtpSink) -> Counter[str]:
    return Counter(message.rcpt_tos[0] for message in sink.messages)


def wait_until(condition: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def finish(process: subprocess.Popen[bytes], timeout: float = 60) -> str:
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output.decode()
    return output.decode()


def test_a_worker_killed_half_way_then_restarted_sends_everyone_once(
    app: Flask, db_session: Session, clock: FrozenClock, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    issue_id, readers = approved_issue(app, db_session, clock, 120)
    emails = [reader.email for reader in readers]
    # Slowed down so the kill lands in the middle of the issue; a short lease (longer than a
    # batch takes) so the test need not wait the default ten minutes for the claimed rows.
    lease = {"DIGEST_CLAIM_LEASE_SECONDS": "2", "DIGEST_BATCH_SIZE": "20"}
    worker = cli(app, tmp_path, "digests", "send", DIGEST_SEND_RATE="60", **lease)
    wait_until(lambda: len(smtp_sink.messages) >= 40, 30)
    worker.send_signal(signal.SIGKILL)
    worker.communicate(timeout=10)
    got_before = received(smtp_sink)
    assert 40 <= sum(got_before.values()) < 120
    # Every row marked sent was received; the rows still claimed are waiting for their lease.
    counts = statuses(db_session, issue_id)
    assert counts.get("sent", 0) <= sum(got_before.values()) <= counts.get("sent", 0) + 1
    # Restart once the dead worker's lease ran out.
    time.sleep(2.2)
    output = finish(cli(app, tmp_path, "digests", "send", **lease))
    assert "digest: sent" in output
    got = received(smtp_sink)
    assert set(got) == set(emails)
    twice = [address for address, n in got.items() if n > 1]
    assert len(twice) <= 1  # only the message in flight at the kill may repeat
    assert max(got.values()) <= 2
    assert statuses(db_session, issue_id) == {"sent": 120}
    assert issue_in(db_session, issue_id).status == IssueStatus.SENT


def test_two_workers_at_once_send_each_reader_once(
    app: Flask, db_session: Session, clock: FrozenClock, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    issue_id, readers = approved_issue(app, db_session, clock, 80)
    emails = [reader.email for reader in readers]
    workers = [
        cli(app, tmp_path, "digests", "send", DIGEST_SEND_RATE="80", DIGEST_BATCH_SIZE="10")
        for _ in range(2)
    ]
    outputs = [finish(worker) for worker in workers]
    got = received(smtp_sink)
    assert set(got) == set(emails) and set(got.values()) == {1}
    assert statuses(db_session, issue_id) == {"sent": 80}
    # Both took part (each claimed batches while the other was sending).
    assert all("digest: sent" in output for output in outputs)


def test_two_schedulers_started_at_once_send_once(
    app: Flask, db_session: Session, clock: FrozenClock, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    issue_id, readers = approved_issue(app, db_session, clock, 30)
    emails = [reader.email for reader in readers]
    schedulers = [
        cli(app, tmp_path, "scheduler", "--only", "send-email", DIGEST_SEND_RATE="30")
        for _ in range(2)
    ]
    try:
        wait_until(lambda: issue_in(db_session, issue_id).status == IssueStatus.SENT, 60)
        time.sleep(0.5)
    finally:
        for scheduler in schedulers:
            scheduler.terminate()
        for scheduler in schedulers:
            scheduler.wait(10)
    got = received(smtp_sink)
    assert set(got) == set(emails) and set(got.values()) == {1}
