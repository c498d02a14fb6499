"""The audit log: `record_audit` for other features, and the page that reads it."""

from __future__ import annotations

import json
from datetime import date, timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.staff.factories import force_login, make_staff
from webapp.core.clock import FrozenClock, as_utc
from webapp.staff.audit import list_audit_entries, record_audit


def test_record_audit_writes_one_row(app: Flask, db_session: Session, clock: FrozenClock) -> None:
    actor = make_staff(db_session, email="ed@example.org")
    with app.app_context():
        entry = record_audit(
            db_session,
            actor=actor,
            action="subscribers.export",
            target_type="subscriber_list",
            target_id=42,
            details={"rows": 3, "since": date(2026, 1, 1)},
            ip="192.0.2.1",
            now=clock.now(),
        )
    db_session.commit()
    assert entry.id is not None
    assert (entry.actor_staff_id, entry.actor_email) == (actor.id, "ed@example.org")
    assert entry.target_id == "42"
    assert json.loads(entry.details) == {"rows": 3, "since": "2026-01-01"}
    assert entry.ip_hash and "192.0.2.1" not in entry.ip_hash
    system = record_audit(db_session, actor=None, action="jobs.cleanup", now=clock.now())
    assert system.actor_email == "system"
    assert system.actor_staff_id is None and system.ip_hash is None


def test_audit_page_newest_first_with_filters_and_paging(
    client: FlaskClient, db_session: Session, clock: FrozenClock
) -> None:
    admin = make_staff(db_session, role="admin", email="boss@example.org")
    other = make_staff(db_session, role="editor", email="ed@example.org")
    start = clock.now() - timedelta(days=1)
    for i in range(60):
        record_audit(
            db_session,
            actor=admin if i % 2 else other,
            action="subscribers.export",
            target_id=i,
            now=start + timedelta(minutes=i),
        )
    record_audit(
        db_session,
        actor=None,
        action="digest.sent",
        target_id="issue-7",
        now=start + timedelta(hours=5),
    )
    db_session.commit()
    force_login(client, db_session, admin)  # adds a "staff.login" entry, the newest

    page = client.get("/staff/audit/")
    assert page.status_code == 200
    text = page.text
    table = text[text.index("<tbody>") :]
    assert table.index("<code>staff.login</code>") < table.index("<code>digest.sent</code>")
    assert table.index("<code>digest.sent</code>") < table.index("<code>subscribers.export</code>")
    assert "Page 1 of 2" in text and "62 entries" in text

    assert 'href="/staff/audit/?page=2"' in text
    second = client.get("/staff/audit/?page=2").text
    assert "Page 2 of 2" in second

    exports_by_ed = client.get("/staff/audit/?action=subscribers.export&actor=ED@").text
    assert "30 entries" in exports_by_ed and "boss@example.org</td>" not in exports_by_ed
    exports = client.get("/staff/audit/?action=subscribers.export").text
    assert 'href="/staff/audit/?page=2&amp;action=subscribers.export"' in exports
    assert client.get("/staff/audit/?page=abc&actor=%25").status_code == 200

    result = list_audit_entries(db_session, action="digest.sent")
    assert [e.target_id for e in result.entries] == ["issue-7"]
    assert as_utc(result.entries[0].at) == start + timedelta(hours=5)
