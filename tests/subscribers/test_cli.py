"""`readership subscribers import/export` and `readership demo`."""

from __future__ import annotations

import re
from pathlib import Path

from flask.testing import FlaskCliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.subscribers.factories import get_subscriber, make_subscriber
from webapp.cli import main
from webapp.staff.models import AuditLog, StaffUser
from webapp.staff.services import check_password
from webapp.subscribers.models import ConsentRecord, Subscriber, SubscriberEvent

DATA = Path(__file__).parent / "data"


def test_import_command_reports_counts_and_rejections(
    runner: FlaskCliRunner, db_session: Session, tmp_path: Path
) -> None:
    report = tmp_path / "rejected.csv"
    result = runner.invoke(
        main,
        [
            "subscribers",
            "import",
            str(DATA / "rejects.csv"),
            "--language",
            "ru",
            "--report",
            str(report),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Encoding: utf-8 (detected)." in result.output
    assert "3 added, 0 changed, 0 already on the list, 6 rejected" in result.output
    assert "line 7: unknown_language lang@example.com" in result.output
    assert "1 rows had a date in the future or unreadable" in result.output
    assert report.read_text(encoding="utf-8").splitlines()[0] == "line,email,reason"
    assert get_subscriber(db_session, "good@example.com").language == "en"  # from the file


def test_import_command_with_explicit_format_and_failures(
    runner: FlaskCliRunner, db_session: Session
) -> None:
    ok = runner.invoke(
        main, ["subscribers", "import", str(DATA / "substack.csv"), "--format", "substack"]
    )
    assert ok.exit_code == 0, ok.output
    wrong = runner.invoke(
        main, ["subscribers", "import", str(DATA / "ghost.csv"), "--format", "substack"]
    )
    assert wrong.exit_code == 1 and "ghost export" in wrong.output
    latin = runner.invoke(main, ["subscribers", "import", str(DATA / "latin1.csv")])
    assert latin.exit_code == 0 and "Encoding: cp1252 (detected)." in latin.output
    unknown = runner.invoke(
        main, ["subscribers", "import", str(DATA / "latin1.csv"), "--encoding", "no-such-codec"]
    )
    assert unknown.exit_code == 2 and "Unknown text encoding" in unknown.output
    bad_language = runner.invoke(
        main, ["subscribers", "import", str(DATA / "ghost.csv"), "--language", "xx"]
    )
    assert bad_language.exit_code == 2


def test_export_command_round_trips(
    runner: FlaskCliRunner, db_session: Session, tmp_path: Path
) -> None:
    make_subscriber(db_session, email="a@example.com", name="Ann", language="ru")
    make_subscriber(db_session, email="b@example.com", status="unsubscribed")
    db_session.commit()
    out = tmp_path / "out.csv"
    result = runner.invoke(main, ["subscribers", "export", str(out)])
    assert result.exit_code == 0 and "Exported 2 subscribers" in result.output
    assert out.read_bytes().startswith(b"\xef\xbb\xbfemail,name,language")
    only = tmp_path / "only.csv"
    runner.invoke(main, ["subscribers", "export", str(only), "--status", "unsubscribed"])
    assert "b@example.com" in only.read_text(encoding="utf-8-sig")
    assert "a@example.com" not in only.read_text(encoding="utf-8-sig")
    assert (
        db_session.scalar(
            select(func.count())
            .select_from(AuditLog)
            .where(AuditLog.action == "subscribers.export")
        )
        == 2
    )
    db_session.query(SubscriberEvent).delete()
    db_session.query(Subscriber).delete()
    db_session.commit()
    again = runner.invoke(main, ["subscribers", "import", str(out)])
    assert again.exit_code == 0 and "2 added" in again.output
    assert get_subscriber(db_session, "a@example.com").name == "Ann"
    assert get_subscriber(db_session, "b@example.com").status == "unsubscribed"


def test_demo_loads_a_believable_list_once(runner: FlaskCliRunner, db_session: Session) -> None:
    result = runner.invoke(main, ["demo", "--if-empty", "--subscribers", "150"])
    assert result.exit_code == 0, result.output
    assert "Demo data loaded: 150 subscribers" in result.output
    password = re.search(r"demo@readership\.local / (\S+)", result.output).group(1)
    assert "/staff/login" in result.output
    admin = db_session.scalars(select(StaffUser)).one()
    assert admin.email == "demo@readership.local" and admin.role == "admin"
    assert check_password(admin, password)

    statuses = dict(
        db_session.execute(
            select(Subscriber.status, func.count()).group_by(Subscriber.status)
        ).all()
    )
    assert set(statuses) >= {"confirmed", "unsubscribed"}
    assert statuses["confirmed"] > 90
    languages = dict(
        db_session.execute(
            select(Subscriber.language, func.count()).group_by(Subscriber.language)
        ).all()
    )
    assert languages["en"] > 30 and languages["ru"] > 30
    sources = set(db_session.scalars(select(Subscriber.source).distinct()))
    assert {"signup_page", "embed", "import"} <= {str(s) for s in sources}
    oldest = db_session.scalar(select(func.min(Subscriber.created_at)))
    newest = db_session.scalar(select(func.max(Subscriber.created_at)))
    assert (newest - oldest).days > 365
    imported = db_session.scalar(
        select(func.count()).select_from(Subscriber).where(Subscriber.import_job_id.is_not(None))
    )
    assert 0 < imported < 50
    assert db_session.scalar(select(func.count()).select_from(ConsentRecord)) == 150 - imported
    assert db_session.scalar(select(func.count()).select_from(SubscriberEvent)) > 300
    # Every address is on a reserved example domain: nothing can reach a real person.
    assert all(
        ".example." in e or e.endswith(("example.com", "example.org", "example.net"))
        for e in db_session.scalars(select(Subscriber.email))
    )

    again = runner.invoke(main, ["demo", "--if-empty"])
    assert again.exit_code == 0
    assert "database not empty, demo skipped" in again.output
    assert "demo@readership.local" in again.output
    assert db_session.scalar(select(func.count()).select_from(Subscriber)) == 150


def test_demo_with_a_given_password_and_no_staff_hint(
    runner: FlaskCliRunner, db_session: Session
) -> None:
    make_subscriber(db_session)
    db_session.commit()
    skipped = runner.invoke(main, ["demo", "--if-empty"])
    assert "database not empty, demo skipped" in skipped.output
    assert "readership staff create EMAIL --role admin" in skipped.output
    loaded = runner.invoke(
        main, ["demo", "--subscribers", "10", "--password", "a long demo password"]
    )
    assert loaded.exit_code == 0, loaded.output
    assert "demo@readership.local / a long demo password" in loaded.output


def test_import_command_reads_the_encoding_it_is_told(
    runner: FlaskCliRunner, db_session: Session, tmp_path: Path
) -> None:
    koi8 = tmp_path / "koi8.csv"
    koi8.write_bytes("email,name\nolga@example.com,Ольга Орлова\n".encode("koi8-r"))
    # Read as windows-1251 (wrong, but asked for): the bytes decode, to other letters.
    forced = runner.invoke(main, ["subscribers", "import", str(koi8), "--encoding", "cp1251"])
    assert forced.exit_code == 0 and "Encoding: cp1251 (as asked)." in forced.output
    assert get_subscriber(db_session, "olga@example.com").name != "Ольга Орлова"
    db_session.query(Subscriber).delete()
    db_session.commit()
    right = runner.invoke(main, ["subscribers", "import", str(koi8), "--encoding", "KOI8-R"])
    assert right.exit_code == 0 and "Encoding: koi8-r (as asked)." in right.output
    assert get_subscriber(db_session, "olga@example.com").name == "Ольга Орлова"
