"""Erasing a person leaves no trace of the address or name in any table."""

from __future__ import annotations

import json

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.helpers.html import csrf_token, first_url_containing
from tests.helpers.smtp import SmtpSink
from tests.staff.factories import force_login, make_staff
from tests.subscribers.erasure_support import traces
from tests.subscribers.factories import (
    get_subscriber,
    one_email_to,
    path_of,
    sign_up,
    upload_import,
    wait_for_import,
)
from webapp.core.addresses import email_fingerprint
from webapp.staff.models import AuditLog
from webapp.subscribers.models import Subscriber

ADDRESS = "erase.me@example.com"
NAME = "Erin Erasable"


def test_erasure_removes_the_person_everywhere(
    app: Flask, client: FlaskClient, db_session: Session, smtp_sink: SmtpSink
) -> None:
    # A full life: signup, confirmation, welcome email, a bounce, an import report.
    sign_up(client, ADDRESS.upper(), name=NAME)
    link = first_url_containing(
        one_email_to(smtp_sink, ADDRESS).part("text/plain"), "/subscribe/confirm/"
    )
    page = client.get(path_of(link))
    client.post(path_of(link), data={"csrf_token": csrf_token(page.text)})
    one_email_to(smtp_sink, ADDRESS, count=2)
    subscriber = get_subscriber(db_session, ADDRESS)
    subscriber_id = subscriber.id

    staff = make_staff(db_session, role="admin")
    db_session.commit()
    force_login(client, db_session, staff)
    started = upload_import(client, f"email,name\n{ADDRESS},{NAME}\n{ADDRESS},Again\n".encode())
    assert wait_for_import(client, started.headers["Location"])["rejected"] == 1
    from webapp.subscribers.services import record_soft_bounce

    record_soft_bounce(
        db_session, ADDRESS, f"452 <{ADDRESS}> mailbox full", now=app.extensions["clock"].now()
    )
    db_session.commit()
    assert traces(db_session, ADDRESS), "the scenario should have left traces to erase"

    # Staff must type the address; a wrong one changes nothing.
    path = f"/staff/subscribers/{subscriber_id}/erase"
    form = client.get(path)
    assert form.status_code == 200
    wrong = client.post(
        path, data={"csrf_token": csrf_token(form.text), "confirm_email": "someone@example.com"}
    )
    assert wrong.status_code == 422
    assert get_subscriber(db_session, ADDRESS) is not None
    done = client.post(
        path, data={"csrf_token": csrf_token(form.text), "confirm_email": f" {ADDRESS.upper()} "}
    )
    assert done.status_code == 303

    assert traces(db_session, ADDRESS, NAME, "erase.me") == []
    erased = db_session.get(Subscriber, subscriber_id)
    assert erased.erased_at is not None and erased.suppressed and erased.status == "unsubscribed"
    assert erased.email.endswith("@erased.invalid") and erased.name == ""
    assert erased.events[-1].kind == "erased"
    assert all(e.detail == "{}" for e in erased.events[:-1])
    entry = db_session.scalars(select(AuditLog).where(AuditLog.action == "subscribers.erase")).one()
    assert json.loads(entry.details) == {
        "email_hash": email_fingerprint(ADDRESS, app.config["SECRET_KEY"])
    }
    # Gone from the staff list and export; the old links no longer work.
    assert ADDRESS not in client.get("/staff/subscribers/").text
    assert "erased.invalid" not in client.get("/staff/subscribers/").text
    assert client.get(path_of(link)).status_code == 410
    # The same address can sign up again as a new person.
    sign_up(client, ADDRESS)
    again = get_subscriber(db_session, ADDRESS)
    assert again is not None and again.id != subscriber_id


def test_only_erasers_may_erase(client: FlaskClient, db_session: Session) -> None:
    from tests.subscribers.factories import make_subscriber

    subscriber = make_subscriber(db_session)
    editor = make_staff(db_session, role="editor")
    db_session.commit()
    force_login(client, db_session, editor)
    assert client.get(f"/staff/subscribers/{subscriber.id}/erase").status_code == 403
    assert "Erase this person" not in client.get(f"/staff/subscribers/{subscriber.id}").text


def test_erasure_removes_the_local_mailbox_copies(app_config: dict, db_session: Session) -> None:
    """With no SMTP server, mail sits in the local Maildir: erasure empties it of the person."""
    from emails.mailbox import LocalMailbox
    from webapp import create_app
    from webapp.outbox.gateway import get_mailer

    app = create_app({**app_config, "SMTP_URL": None})
    client = app.test_client()
    sign_up(client, ADDRESS, name=NAME)
    sign_up(client, "keep.me@example.com")
    box = LocalMailbox(get_mailer(app).mailbox_dir)
    assert box.list(1, 50).total == 2

    subscriber_id = get_subscriber(db_session, ADDRESS).id
    staff = make_staff(db_session, role="admin")
    db_session.commit()
    force_login(client, db_session, staff)
    path = f"/staff/subscribers/{subscriber_id}/erase"
    form = client.get(path)
    done = client.post(path, data={"csrf_token": csrf_token(form.text), "confirm_email": ADDRESS})

    assert done.status_code == 303
    remaining = box.list(1, 50)
    assert remaining.total == 1
    assert all(
        ADDRESS not in box.get(e.key).raw.decode("utf-8", "replace") for e in remaining.entries
    )
