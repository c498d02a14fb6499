"""CSV import (ours, Substack, Ghost, Mailchimp) and export, through the real service."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.subscribers.factories import get_subscriber, make_subscriber
from webapp.core.clock import FrozenClock, as_utc
from webapp.subscribers import csv_io
from webapp.subscribers.models import ConsentRecord, ImportJob, Subscriber, SubscriberEvent
from webapp.subscribers.queries import history

DATA = Path(__file__).parent / "data"
LANGUAGES = ("en", "ru")


def run(
    session: Session,
    clock: FrozenClock,
    path: Path,
    fmt: str = "auto",
    language: str = "en",
    batch_size: int = 1000,
) -> ImportJob:
    job = csv_io.start_import(
        session,
        filename=path.name,
        requested_format=fmt,
        default_language=language,
        now=clock.now(),
    )
    session.commit()
    return csv_io.run_import(
        session, job, path, languages=LANGUAGES, now=clock.now, batch_size=batch_size
    )


def rejections(job: ImportJob) -> list[tuple[int, str, str]]:
    return [(r.line, r.value, r.reason) for r in job.rejections]


def dt(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def test_our_own_format(db_session: Session, clock: FrozenClock) -> None:
    job = run(db_session, clock, DATA / "readership.csv")
    assert job.status == "finished" and job.detected_format == "readership"
    assert (job.created_count, job.rejected_count, job.processed_rows) == (5, 0, 5)
    anna = get_subscriber(db_session, "anna@example.com")
    assert anna.name == "Анна Иванова" and anna.languages == ["ru", "en"]
    assert anna.status == "confirmed" and anna.source == "signup_page"
    assert as_utc(anna.confirmed_at) == dt("2025-03-01T10:05:00")
    ben = get_subscriber(db_session, "ben@example.com")
    assert ben.status == "unsubscribed" and as_utc(ben.unsubscribed_at) == dt("2025-09-01T12:00")
    dan = get_subscriber(db_session, "dan@example.com")
    assert dan.name == 'Dan "The Man" Reed' and dan.status == "bounced"
    assert dan.suppressed and dan.suppression_reason == "hard_bounce"
    assert get_subscriber(db_session, "eve@example.com").paused is True
    assert get_subscriber(db_session, "cleo@example.com").status == "pending"
    # Each imported person points at the import: that is their "imported" history line.
    assert anna.import_job_id == job.id
    assert [(line.kind, line.detail["format"]) for line in history(db_session, anna)] == [
        ("imported", "readership")
    ]
    assert anna.consents == [] and anna.events == []


def test_substack(db_session: Session, clock: FrozenClock) -> None:
    job = run(db_session, clock, DATA / "substack.csv", language="ru")
    assert job.detected_format == "substack"
    assert job.created_count == 3
    assert rejections(job) == [(5, "broken-address", "bad_email")]
    tara = get_subscriber(db_session, "tara@example.org")
    assert tara.status == "confirmed" and tara.language == "ru"
    assert as_utc(tara.created_at) == dt("2024-06-11T08:30:00")
    assert get_subscriber(db_session, "will@example.net").status == "unsubscribed"


def test_ghost(db_session: Session, clock: FrozenClock) -> None:
    job = run(db_session, clock, DATA / "ghost.csv")
    assert job.detected_format == "ghost" and job.created_count == 4
    olga = get_subscriber(db_session, "olga@example.com")
    assert olga.language == "ru" and olga.name == "Ольга Орлова"  # from the "ru" label
    assert get_subscriber(db_session, "peter@example.com").status == "unsubscribed"
    gone = get_subscriber(db_session, "gone@example.com")
    assert gone.status == "unsubscribed" and as_utc(gone.unsubscribed_at) == dt("2024-01-01")
    assert get_subscriber(db_session, "grace@example.com").status == "confirmed"


def test_mailchimp_lists_in_sequence(db_session: Session, clock: FrozenClock) -> None:
    subscribed = run(db_session, clock, DATA / "mailchimp_subscribed.csv")
    assert subscribed.detected_format == "mailchimp" and subscribed.created_count == 2
    alice = get_subscriber(db_session, "alice@example.com")
    assert alice.name == "Alice Adams" and alice.status == "confirmed"
    assert as_utc(alice.created_at) == dt("2022-01-15T10:22:11")
    assert as_utc(alice.confirmed_at) == dt("2022-01-15T10:25:00")
    # The unsubscribed export: Alice (on the list) leaves, Ivan arrives as unsubscribed.
    unsubscribed = run(db_session, clock, DATA / "mailchimp_unsubscribed.csv")
    assert (unsubscribed.created_count, unsubscribed.updated_count) == (1, 1)
    alice = get_subscriber(db_session, "alice@example.com")
    assert alice.status == "unsubscribed"
    assert as_utc(alice.unsubscribed_at) == dt("2023-05-05T05:05:05")
    assert [e.kind for e in alice.events] == ["imported"]  # the change by the second file
    assert [line.kind for line in history(db_session, alice)] == ["imported", "imported"]
    assert get_subscriber(db_session, "ivan@example.com").status == "unsubscribed"
    cleaned = run(db_session, clock, DATA / "mailchimp_cleaned.csv")
    dead = get_subscriber(db_session, "dead@example.com")
    assert cleaned.created_count == 1 and dead.status == "bounced" and dead.suppressed


def test_rejected_rows_are_reported_with_line_and_reason(
    db_session: Session, clock: FrozenClock
) -> None:
    job = run(db_session, clock, DATA / "rejects.csv", batch_size=2)
    assert job.status == "finished"
    assert job.created_count == 3
    assert rejections(job) == [
        (3, "", "missing_email"),
        (4, "not-an-email", "bad_email"),
        (5, "good@example.com", "duplicate_in_file"),
        (6, "weird@example.com", "unknown_status"),
        (7, "lang@example.com", "unknown_language"),
        (9, "multi line@example.com", "bad_email"),
    ]
    # An unreadable date ("yesterday") is the import time, counted, and the row imported.
    assert job.dates_clamped == 1
    assert as_utc(get_subscriber(db_session, "date@example.com").created_at) == clock.now()
    assert get_subscriber(db_session, "last@example.com").status == "pending"
    # Every record is counted once: added, changed, already there or rejected.
    assert job.processed_rows == job.total_rows == 9 == job.created_count + job.rejected_count
    report = csv_io.rejections_csv(job)
    assert report.splitlines()[0] == "line,email,reason"
    assert "7,lang@example.com,unknown_language" in report


def test_people_who_left_stay_gone_whatever_the_file_says(
    db_session: Session, clock: FrozenClock
) -> None:
    make_subscriber(db_session, email="anna@example.com", status="unsubscribed")
    make_subscriber(db_session, email="eve@example.com", status="bounced")
    make_subscriber(db_session, email="ben@example.com", status="confirmed")
    make_subscriber(db_session, email="cleo@example.com", status="confirmed")
    db_session.commit()
    job = run(db_session, clock, DATA / "readership.csv")
    assert get_subscriber(db_session, "anna@example.com").status == "unsubscribed"
    assert get_subscriber(db_session, "eve@example.com").status == "bounced"
    # An unsubscribe in the file is applied; "pending" never downgrades a confirmed person.
    assert get_subscriber(db_session, "ben@example.com").status == "unsubscribed"
    assert get_subscriber(db_session, "cleo@example.com").status == "confirmed"
    assert (job.created_count, job.updated_count, job.unchanged_count) == (1, 1, 3)
    # Importing the same file again changes nothing and duplicates nobody.
    again = run(db_session, clock, DATA / "readership.csv")
    assert (again.created_count, again.updated_count, again.unchanged_count) == (0, 0, 5)
    assert db_session.scalar(select(func.count()).select_from(Subscriber)) == 5


def test_export_then_import_restores_the_list(
    db_session: Session, clock: FrozenClock, tmp_path: Path
) -> None:
    run(db_session, clock, DATA / "readership.csv")
    run(db_session, clock, DATA / "ghost.csv")
    before = _snapshot(db_session)
    out = io.StringIO(newline="")
    assert csv_io.export_subscribers(db_session, out) == len(before) == 9
    text = out.getvalue()
    assert text.startswith(
        "\ufeffemail,name,language,languages,status,source,created_at,"
        "confirmed_at,unsubscribed_at,paused"
    )
    export = tmp_path / "export.csv"
    export.write_text(text, encoding="utf-8", newline="")
    for model in (SubscriberEvent, ConsentRecord, Subscriber):
        db_session.query(model).delete()
    db_session.commit()
    job = run(db_session, clock, export)
    assert job.detected_format == "readership" and job.rejected_count == 0
    assert _snapshot(db_session) == before


def _snapshot(session: Session) -> dict[str, tuple[object, ...]]:
    session.expire_all()
    rows = session.scalars(select(Subscriber))
    return {
        s.email: (
            s.name,
            s.languages,
            str(s.status),
            str(s.source),
            as_utc(s.created_at).replace(microsecond=0),
            s.confirmed_at and as_utc(s.confirmed_at).replace(microsecond=0),
            s.unsubscribed_at and as_utc(s.unsubscribed_at).replace(microsecond=0),
            s.paused,
            s.suppressed,
            s.suppression_reason,
        )
        for s in rows
    }


def test_export_by_status(db_session: Session) -> None:
    make_subscriber(db_session, email="a@example.com", status="confirmed")
    make_subscriber(db_session, email="b@example.com", status="pending")
    db_session.commit()
    out = io.StringIO(newline="")
    assert csv_io.export_subscribers(db_session, out, status=csv_io.SubscriberStatus.PENDING) == 1
    assert "b@example.com" in out.getvalue() and "a@example.com" not in out.getvalue()


def test_a_legacy_8_bit_file_is_read_in_its_detected_encoding(
    db_session: Session, clock: FrozenClock
) -> None:
    job = run(db_session, clock, DATA / "latin1.csv")
    assert job.status == "finished" and job.encoding == "cp1252"
    assert get_subscriber(db_session, "zoe@example.com").name == "Zoé Café"


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty"), (b"name,phone\r\nAnn,123\r\n", "No email column"), (b"\xef\xbb\xbf", "empty")],
)
def test_unusable_files(
    db_session: Session, clock: FrozenClock, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    job = run(db_session, clock, path)
    assert job.status == "failed" and message in job.error


def test_a_format_that_does_not_match_the_header_is_refused(
    db_session: Session, clock: FrozenClock
) -> None:
    job = run(db_session, clock, DATA / "ghost.csv", fmt="mailchimp")
    assert job.status == "failed" and "ghost" in job.error


def test_tab_separated_and_minimal_lists(
    db_session: Session, clock: FrozenClock, tmp_path: Path
) -> None:
    tabbed = tmp_path / "tabbed.csv"
    tabbed.write_text("Email\tName\nkim@example.com\tKim; Lee\n", encoding="utf-8")
    job = run(db_session, clock, tabbed)
    assert job.created_count == 1
    assert get_subscriber(db_session, "kim@example.com").name == "Kim; Lee"
    minimal = tmp_path / "minimal.csv"
    minimal.write_text("email\nlee@example.com\n", encoding="utf-8")
    run(db_session, clock, minimal, language="ru")
    lee = get_subscriber(db_session, "lee@example.com")
    assert lee.status == "confirmed" and lee.language == "ru"


def test_progress_is_reported_per_batch(
    db_session: Session, clock: FrozenClock, tmp_path: Path
) -> None:
    path = tmp_path / "many.csv"
    path.write_text("email\n" + "".join(f"p{i}@example.com\n" for i in range(25)), encoding="utf-8")
    seen: list[tuple[int, int]] = []
    job = csv_io.start_import(
        db_session,
        filename="many.csv",
        requested_format="auto",
        default_language="en",
        now=clock.now(),
    )
    db_session.commit()
    csv_io.run_import(
        db_session,
        job,
        path,
        languages=LANGUAGES,
        now=clock.now,
        progress=lambda done, total: seen.append((done, total)),
        batch_size=10,
    )
    assert seen == [(10, 25), (20, 25), (25, 25)]
    assert job.percent == 100 and job.created_count == 25


# --- Hostile files: nothing lost silently -----------------------------------------------


def _write(tmp_path: Path, body: bytes | str, name: str = "hostile.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(body.encode() if isinstance(body, str) else body)
    return path


def _adds_up(job: ImportJob, data_lines: int) -> None:
    """Every data line is counted once: added, changed, already there or rejected."""
    assert job.processed_rows == job.total_rows == data_lines
    assert (
        job.created_count + job.updated_count + job.unchanged_count + job.rejected_count
    ) == data_lines


def _emails(session: Session) -> list[str]:
    session.expire_all()
    return sorted(session.scalars(select(Subscriber.email)))


def test_an_unterminated_quote_costs_its_line_only(
    db_session: Session, clock: FrozenClock, tmp_path: Path
) -> None:
    path = _write(
        tmp_path,
        'email,name\nann@example.com,Ann\n"bob@example.com,Bob\n'
        "carol@example.com,Carol\ndan@example.com,Dan\n",
    )
    job = run(db_session, clock, path)
    assert rejections(job) == [(3, '"bob@example.com,Bob', "unterminated_quote")]
    assert _emails(db_session) == ["ann@example.com", "carol@example.com", "dan@example.com"]
    _adds_up(job, 4)


def test_a_stray_quote_later_on_does_not_glue_rows_together(
    db_session: Session, clock: FrozenClock, tmp_path: Path
) -> None:
    # The open quote of line 2 "closes" on line 4: the record would have the right width,
    # but line 3 it swallowed is a row of its own, so line 2 is refused and 3 read again.
    path = _write(
        tmp_path,
        'email,name\nbob@example.com,"Bob\ncarol@example.com,Carol\n'
        'erin@example.com,Erin "the" Best"\nfay@example.com,Fay\n',
    )
    job = run(db_session, clock, path)
    assert [(line, reason) for line, _, reason in rejections(job)] == [
        (2, "unterminated_quote"),
        (4, "unterminated_quote"),
    ]
    assert _emails(db_session) == ["carol@example.com", "fay@example.com"]
    _adds_up(job, 4)


def test_a_quoted_cell_may_span_lines(
    db_session: Session, clock: FrozenClock, tmp_path: Path
) -> None:
    path = _write(
        tmp_path,
        'email,name,note\nann@example.com,"Ann\nLee",two\r\nlines\n'
        'bob@example.com,Bob,"a note\nover two lines"\n',
    )
    assert run(db_session, clock, path).rejected_count == 1  # "two\r\nlines": width 4
    _wipe_subscribers(db_session)
    path = _write(
        tmp_path,
        'email,name,note\nann@example.com,"Ann\nLee",x\n'
        'bob@example.com,Bob,"a note\nover two lines"\n',
    )
    job = run(db_session, clock, path)
    assert (job.created_count, job.rejected_count, job.total_rows) == (2, 0, 2)
    assert get_subscriber(db_session, "ann@example.com").name == "Ann Lee"


def _wipe_subscribers(session: Session) -> None:
    session.query(Subscriber).delete()
    session.commit()


def test_nul_bytes_huge_cells_and_wrong_widths_are_refused_with_their_line(
    db_session: Session, clock: FrozenClock, tmp_path: Path
) -> None:
    huge = "x" * (10 * 1024 * 1024)
    body = (
        "email,name\n"
        "nul@example.com,Ni\x00l\n"  # 2
        '"nul2@example.com","Ni\x00l"\n'  # 3
        f"big@example.com,{huge}\n"  # 4
        f'big2@example.com,"{huge}"\n'  # 5
        "wide@example.com,Wide,extra\n"  # 6
        "trailing@example.com,Trailing,\n"  # 7: one empty extra cell is fine
        f'"open@example.com,{huge}\n'  # 8: unterminated and huge
        "ok@example.com,OK\n"  # 9
    )
    job = run(db_session, clock, _write(tmp_path, body))
    assert [(line, reason) for line, _, reason in rejections(job)] == [
        (2, "nul_byte"),
        (3, "nul_byte"),
        (4, "row_too_long"),
        (5, "row_too_long"),
        (6, "wrong_field_count"),
        (8, "row_too_long"),
    ]
    assert rejections(job)[0][1] == "nul@example.com,Ni l"  # NUL-free in the report
    assert _emails(db_session) == ["ok@example.com", "trailing@example.com"]
    _adds_up(job, 8)


def test_mixed_line_ends_keep_their_line_numbers(
    db_session: Session, clock: FrozenClock, tmp_path: Path
) -> None:
    path = _write(
        tmp_path,
        b"email,name\r\na@example.com,A\rnot-an-email,B\nc@example.com,C\r\n\r\nd@example.com,D",
    )
    job = run(db_session, clock, path)
    assert rejections(job) == [(3, "not-an-email", "bad_email")]
    assert _emails(db_session) == ["a@example.com", "c@example.com", "d@example.com"]
    _adds_up(job, 4)  # the blank line 5 is not a row


def test_future_and_unreadable_dates_are_the_import_time_and_counted(
    db_session: Session, clock: FrozenClock, tmp_path: Path
) -> None:
    path = _write(
        tmp_path,
        "email,created_at,confirmed_at\n"
        "a@example.com,9999-01-01T00:00:00.000Z,\n"
        "b@example.com,0000-00-00T00:00:00Z,0000-00-00 00:00:00\n"
        "c@example.com,2020-05-01T10:00:00Z,\n",
    )
    job = run(db_session, clock, path)
    assert (job.created_count, job.rejected_count, job.dates_clamped) == (3, 0, 2)
    assert as_utc(get_subscriber(db_session, "a@example.com").created_at) == clock.now()
    assert as_utc(get_subscriber(db_session, "b@example.com").confirmed_at) == clock.now()
    assert as_utc(get_subscriber(db_session, "c@example.com").created_at) == dt("2020-05-01T10:00")


# --- Encodings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codec", "expected"),
    [
        ("cp1251", "cp1251"),
        ("koi8-r", "koi8-r"),
        ("utf-16", "utf-16"),
        ("utf-16-be", "utf-16"),
        ("utf-8", "utf-8"),
        ("utf-8-sig", "utf-8-sig"),
    ],
)
def test_cyrillic_lists_in_every_encoding_excel_writes(
    db_session: Session, clock: FrozenClock, tmp_path: Path, codec: str, expected: str
) -> None:
    text = (DATA / "ghost.csv").read_text(encoding="utf-8-sig").replace("\n", "\r\n")
    body = text.encode(codec)
    if codec == "utf-16-be":
        body = b"\xfe\xff" + body  # with its byte-order mark, as Windows writes it
    job = run(db_session, clock, _write(tmp_path, body))
    assert job.status == "finished" and job.encoding == expected
    assert csv_io.detect_encoding(tmp_path / "hostile.csv") == expected
    assert get_subscriber(db_session, "olga@example.com").name == "Ольга Орлова"


def test_a_wrong_forced_encoding_refuses_the_rows_it_cannot_decode(
    db_session: Session, clock: FrozenClock, tmp_path: Path
) -> None:
    path = _write(
        tmp_path, "email,name\nolga@example.com,Ольга\nann@example.com,Ann\n".encode("cp1251")
    )
    job = csv_io.start_import(
        db_session,
        filename="x.csv",
        requested_format="auto",
        default_language="en",
        now=clock.now(),
        requested_encoding="utf-8",
    )
    db_session.commit()
    csv_io.run_import(db_session, job, path, languages=LANGUAGES, now=clock.now)
    assert [(line, reason) for line, _, reason in rejections(job)] == [(2, "undecodable_text")]
    assert _emails(db_session) == ["ann@example.com"]


def test_the_preview_shows_the_first_rows_decoded(tmp_path: Path) -> None:
    path = _write(tmp_path, 'email;name\nolga@example.com;Ольга\n"broken;x\n'.encode("koi8-r"))
    preview = csv_io.preview_csv(path)
    assert (preview.encoding, preview.detected_encoding, preview.format) == (
        "koi8-r",
        True,
        "readership",
    )
    assert preview.header == ["email", "name"]
    assert [(r.line, r.cells, r.problem) for r in preview.rows] == [
        (2, ["olga@example.com", "Ольга"], None),
        (3, None, "unterminated_quote"),
    ]
    assert csv_io.preview_csv(path, encoding="cp1251").rows[0].cells != [
        "olga@example.com",
        "Ольга",
    ]


# --- Statuses from values -----------------------------------------------------------------


def test_mailchimp_statuses_come_from_values_not_columns(
    db_session: Session, clock: FrozenClock, tmp_path: Path
) -> None:
    path = _write(
        tmp_path,
        (
            '"Email Address",Name,MEMBER_RATING,OPTIN_TIME,CONFIRM_TIME,UNSUB_TIME,UNSUB_REASON,'
            "CLEAN_TIME,CLEAN_CAMPAIGN_TITLE,LEID\n"
            "sub@example.com,Sub Scriber,2,2020-01-01 10:00:00,2020-01-01 10:05:00,,,,,1\n"
            "left@example.com,Left,2,2020-01-01 10:00:00,,2021-03-03 03:03:03,spam,,,2\n"
            "dead@example.com,Dead,1,2020-01-01 10:00:00,,,,2022-02-02 02:02:02,Weekly,3\n"
        ),
    )
    job = run(db_session, clock, path)
    assert job.detected_format == "mailchimp" and job.created_count == 3
    sub = get_subscriber(db_session, "sub@example.com")
    assert (sub.status, sub.name) == ("confirmed", "Sub Scriber")
    left = get_subscriber(db_session, "left@example.com")
    assert left.status == "unsubscribed"
    assert as_utc(left.unsubscribed_at) == dt("2021-03-03T03:03:03")
    dead = get_subscriber(db_session, "dead@example.com")
    assert dead.status == "bounced" and dead.suppressed
    assert as_utc(dead.suppressed_at) == dt("2022-02-02T02:02:02")


def test_a_mailchimp_status_column_is_read_and_non_subscribers_are_not_imported(
    db_session: Session, clock: FrozenClock, tmp_path: Path
) -> None:
    path = _write(
        tmp_path,
        (
            "Email Address,First Name,Last Name,Status,LEID\n"
            "a@example.com,Ann,Lee,subscribed,1\n"
            "b@example.com,Bob,,Non-subscribed,2\n"
            "c@example.com,Cy,,cleaned,3\n"
            "d@example.com,Di,,unsubscribed,4\n"
        ),
    )
    job = run(db_session, clock, path)
    assert rejections(job) == [(3, "b@example.com", "not_subscribed")]
    assert [get_subscriber(db_session, f"{x}@example.com").status for x in "acd"] == [
        "confirmed",
        "bounced",
        "unsubscribed",
    ]
    assert get_subscriber(db_session, "a@example.com").name == "Ann Lee"


def test_listmonk_export_statuses_dates_and_language(
    db_session: Session, clock: FrozenClock, tmp_path: Path
) -> None:
    path = _write(
        tmp_path,
        (
            "uuid,email,name,attributes,status,created_at,updated_at\n"
            'a1,ru@example.com,Ирина,"{""language"": ""ru"", ""city"": ""Riga""}",enabled,'
            "2024-03-01 12:00:00.123456 +0530 IST,2024-03-02 12:00:00 +0530 IST\n"
            "a2,gone@example.com,Gone,{},blocklisted,2023-01-01 00:00:00 +0000 UTC,"
            "2023-06-01 00:00:00 +0000 UTC\n"
            "a3,bad@example.com,Bad,not json,enabled,,\n"
        ),
    )
    job = run(db_session, clock, path)
    assert job.detected_format == "listmonk"
    assert rejections(job) == [(4, "bad@example.com", "bad_value")]
    irina = get_subscriber(db_session, "ru@example.com")
    assert (irina.status, irina.language, irina.name) == ("confirmed", "ru", "Ирина")
    assert as_utc(irina.created_at) == datetime(2024, 3, 1, 6, 30, 0, 123456, tzinfo=UTC)
    gone = get_subscriber(db_session, "gone@example.com")
    assert gone.status == "unsubscribed" and as_utc(gone.unsubscribed_at) == dt("2023-06-01")


def test_one_column_names_are_read(db_session: Session, clock: FrozenClock, tmp_path: Path) -> None:
    run(db_session, clock, _write(tmp_path, "E-mail;Full name\nkim@example.com;Kim Lee\n"))
    assert get_subscriber(db_session, "kim@example.com").name == "Kim Lee"


@pytest.mark.parametrize(
    ("body", "forced"),
    [
        (b"email,name\na@example.com,Ann\n", "utf-16"),  # no BOM
        (b"\xff\xfe" + "email,name\n".encode("utf-16-le") + b"\x00\xd8a\x00", "utf-16"),  # bad pair
        ("email,имя\na@example.com,Ann\n".encode("cp1251"), "utf-8"),  # undecodable header
    ],
)
def test_a_wrong_encoding_is_a_message_or_a_refused_row_never_a_crash(
    db_session: Session, clock: FrozenClock, tmp_path: Path, body: bytes, forced: str
) -> None:
    path = _write(tmp_path, body)
    try:
        preview = csv_io.preview_csv(path, encoding=forced)
    except csv_io.ImportFileError as exc:
        assert str(exc)
    else:
        assert all(not csv_io._UNDECODABLE.search(cell) for cell in preview.header)
    job = csv_io.start_import(
        db_session,
        filename="x.csv",
        requested_format="auto",
        default_language="en",
        now=clock.now(),
        requested_encoding=forced,
    )
    db_session.commit()
    csv_io.run_import(db_session, job, path, languages=LANGUAGES, now=clock.now)
    assert job.status in ("finished", "failed") and (job.status == "finished" or job.error)
