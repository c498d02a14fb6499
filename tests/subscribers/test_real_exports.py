"""Subscriber exports other projects publish (tests/fixtures/real/SOURCES.md), each imported
with its outcome written down, imported again to show nothing changes or duplicates, and
exported, re-imported and exported again to show the export round-trips to the byte."""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.subscribers.test_csv_io import rejections, run
from webapp.core.clock import FrozenClock
from webapp.subscribers import csv_io
from webapp.subscribers.models import (
    ConsentRecord,
    ImportJob,
    ImportRejection,
    Subscriber,
    SubscriberEvent,
)

REAL = Path(__file__).parents[1] / "fixtures" / "real" / "subscribers"


@dataclass(frozen=True)
class Expected:
    """What importing one file gives."""

    format: str
    created: int
    statuses: dict[str, int]
    names: dict[str, str] = field(default_factory=dict)
    rejected: list[tuple[int, str, str]] = field(default_factory=list)
    encoding: str = "utf-8"
    dates_clamped: int = 0


_SUBSTACK_SIGNUPS = Expected(
    "substack",
    21,
    {"confirmed": 19, "unsubscribed": 2},  # email_disabled=true: 2 rows
    names={"ömil@gmail.com": "", "maïbes@gmail.com": ""},
)
_LISTMONK_NAMES = {f"user{n}@mail.com": f"First{n} Last{n}" for n in (0, 42, 99)}

EXPECTED: dict[str, Expected] = {
    # Mailchimp: the status from CLEAN_TIME / UNSUB_TIME values; first + last names, trimmed.
    "mailchimp_subscribed.csv": Expected(
        "mailchimp",
        5,
        {"confirmed": 5},
        names={"s5@example.com": "Dolor Simet", "s1@example.com": ""},
    ),
    "mailchimp_unsubscribed.csv": Expected(
        "mailchimp",
        5,
        {"unsubscribed": 5},
        names={"u1@example.com": "Dolor", "u3@example.com": "Lorem Ipsum"},
    ),
    "mailchimp_cleaned.csv": Expected(
        "mailchimp", 5, {"bounced": 5}, names={"c2@example.com": "Simet Lut"}
    ),
    # An "all contacts"-style export: UNSUB_* columns, empty for these subscribed people, and
    # a one-column Name.
    "mailchimp_all-contacts_code-dot-org_addresses-replaced.csv": Expected(
        "mailchimp",
        2,
        {"confirmed": 2},
        names={
            "engineer1@example.com": "Rick Hawkins",
            "engineer2@example.com": "hadi partovi test",
        },
    ),
    # Substack: only email_disabled stops email (active_subscription is about paying).
    "substack_signup_emails.csv": _SUBSTACK_SIGNUPS,
    "substack_signup_emails.derived-cp1252.csv": Expected(
        **{**_SUBSTACK_SIGNUPS.__dict__, "encoding": "cp1252"}
    ),
    "substack_signup_emails.derived-utf16le-bom-crlf.csv": Expected(
        **{**_SUBSTACK_SIGNUPS.__dict__, "encoding": "utf-16"}
    ),
    "substack_subscriber_emails.csv": Expected(
        "substack", 17, {"confirmed": 15, "unsubscribed": 2}
    ),
    # TryGhost/migrate calls it invalid for Substack; for us it is a plain list.
    "substack_invalid.csv": Expected(
        "readership", 3, {"confirmed": 3}, names={"maguirec086@comm.ca": "Dolor Simet"}
    ),
    # Ghost: subscribed_to_emails (or subscribed) false means no newsletter.
    "ghost_valid-members-import.csv": Expected(
        "ghost",
        2,
        {"confirmed": 1, "unsubscribed": 1},
        names={"jbloggs@example.com": "joe", "test@example.com": "test"},
    ),
    "ghost_subscribed-to-emails-header.csv": Expected(
        "ghost", 2, {"confirmed": 1, "unsubscribed": 1}
    ),
    "ghost_members-for-bulk-unsubscribe.csv": Expected("ghost", 8, {"confirmed": 8}),
    "ghost_members-future-created-at.csv": Expected(
        "readership",
        1,
        {"confirmed": 1},
        names={"member+future@example.com": "Future Member"},
        dates_clamped=1,
    ),
    # A row with fewer cells than the header is refused, with its line, never guessed at.
    "ghost_members-ragged-row.csv": Expected(
        "readership",
        1,
        {"confirmed": 1},
        names={"ragged-full@example.com": "Bob"},
        rejected=[(2, "ragged-first@example.com", "wrong_field_count")],
    ),
    "ghost_members-formula-like-values.csv": Expected(
        "readership",
        2,
        {"confirmed": 2},
        names={"formula@example.com": "-5", "formula2@example.com": "=SUM(A1)"},
    ),
    # One trailing empty cell per row is harmless; the second address is a duplicate.
    "ghost_members-duplicate-emails.csv": Expected(
        "readership",
        1,
        {"confirmed": 1},
        rejected=[(3, "duplicate@example.com", "duplicate_in_file")],
    ),
    "ghost_members-gift-with-comp.csv": Expected("readership", 1, {"confirmed": 1}),
    "ghost_multiple-records-with-empty-values.csv": Expected(
        "readership",
        2,
        {"confirmed": 2},
        names={"jbloggs@example.com": "Bob", "test@example.com": ""},
    ),
    "ghost_valid-members-labels.csv": Expected("readership", 2, {"confirmed": 2}),
    # listmonk: email,name,attributes (JSON).
    "listmonk_subs.csv": Expected("listmonk", 100, {"confirmed": 100}, names=_LISTMONK_NAMES),
    "listmonk_subs-domain-blocklist.csv": Expected(
        "listmonk", 4, {"confirmed": 4}, names={"ban1-import@ban.net": "First1 Last1"}
    ),
}


def test_every_file_of_the_corpus_has_its_expectation() -> None:
    assert sorted(path.name for path in REAL.glob("*.csv")) == sorted(EXPECTED)


def _statuses(session: Session) -> dict[str, int]:
    session.expire_all()
    return dict(Counter(str(status) for status in session.scalars(select(Subscriber.status))))


def _names(session: Session, emails: list[str]) -> dict[str, str]:
    rows = session.execute(
        select(Subscriber.email, Subscriber.name).where(Subscriber.email.in_(emails))
    )
    return dict(rows.tuples().all())


def _export(session: Session) -> str:
    out = io.StringIO(newline="")
    csv_io.export_subscribers(session, out)
    return out.getvalue()


def _wipe(session: Session) -> None:
    for model in (SubscriberEvent, ConsentRecord, Subscriber, ImportRejection, ImportJob):
        session.query(model).delete()
    session.commit()


def _data_records(path: Path, encoding: str) -> int:
    """Non-blank lines after the header (none of these files has a multi-line cell)."""
    text = path.read_bytes().decode("utf-8-sig" if encoding == "utf-8" else encoding)
    return sum(1 for line in text.splitlines()[1:] if line.strip(", "))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_real_export_imports_as_its_producer_means_it(
    db_session: Session, clock: FrozenClock, tmp_path: Path, name: str
) -> None:
    expected = EXPECTED[name]
    path = REAL / name
    job = run(db_session, clock, path)
    assert (job.status, job.error) == ("finished", None)
    assert (job.detected_format, job.encoding) == (expected.format, expected.encoding)
    assert (job.created_count, rejections(job)) == (expected.created, expected.rejected)
    assert job.dates_clamped == expected.dates_clamped
    # Nothing lost: every data line is added, changed, already there or rejected.
    assert job.processed_rows == job.total_rows == _data_records(path, expected.encoding)
    assert job.processed_rows == (
        job.created_count + job.updated_count + job.unchanged_count + job.rejected_count
    )
    assert _statuses(db_session) == expected.statuses
    assert _names(db_session, list(expected.names)) == expected.names

    # Imported twice: nobody is added or changed, nobody is there twice.
    first_export = _export(db_session)
    again = run(db_session, clock, path)
    assert (again.created_count, again.updated_count) == (0, 0)
    assert again.unchanged_count == job.created_count
    assert db_session.scalar(select(func.count()).select_from(Subscriber)) == expected.created
    assert _export(db_session) == first_export

    # Export -> import -> export gives the same bytes.
    exported = tmp_path / "export.csv"
    exported.write_text(first_export, encoding="utf-8", newline="")
    _wipe(db_session)
    restored = run(db_session, clock, exported)
    assert (restored.created_count, restored.rejected_count) == (expected.created, 0)
    assert _export(db_session) == first_export
