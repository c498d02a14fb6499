"""Subscriber test data and the steps a reader takes, for any feature's tests.

from tests.subscribers.factories import make_subscriber, sign_up

subscriber = make_subscriber(db_session, email="ann@example.com", status="confirmed")
sign_up(client, "bob@example.com", language="ru")   # through the real page
"""

from __future__ import annotations

import io
import itertools
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from tests.helpers.html import csrf_token
from tests.helpers.smtp import ReceivedMessage, SmtpSink
from webapp.subscribers.models import (
    Subscriber,
    SubscriberEvent,
    SubscriberSource,
    SubscriberStatus,
    pack_languages,
)

_counter = itertools.count(1)


def make_subscriber(
    session: Session,
    *,
    email: str | None = None,
    name: str = "",
    status: str = "confirmed",
    language: str = "en",
    languages: list[str] | None = None,
    source: str = "signup_page",
    created_at: datetime | None = None,
    **fields: Any,
) -> Subscriber:
    """A subscriber row (flushed; commit before using it through the app)."""
    created = created_at or datetime(2026, 10, 1, 12, 0, tzinfo=UTC)
    values: dict[str, Any] = {
        "email": (email or f"reader{next(_counter)}@example.com").lower(),
        "name": name,
        "name_key": name.casefold(),
        "language": language,
        "digest_languages": pack_languages(languages or [language]),
        "status": SubscriberStatus(status),
        "source": SubscriberSource(source),
        "created_at": created,
        "confirmed_at": created if status == "confirmed" else None,
        "unsubscribed_at": created if status == "unsubscribed" else None,
        "paused": False,
        "suppressed": status == "bounced",
        "suppression_reason": "hard_bounce" if status == "bounced" else None,
        "soft_bounce_count": 0,
    }
    subscriber = Subscriber(**{**values, **fields})
    session.add(subscriber)
    session.flush()
    return subscriber


def sign_up(
    client: FlaskClient,
    email: str,
    *,
    language: str = "en",
    prefix: str = "",
    name: str = "",
    ip: str = "203.0.113.7",
    **extra: str,
) -> TestResponse:
    """Fill in and send the signup page as a reader would (no redirects followed)."""
    page = client.get(f"{prefix}/subscribe", environ_base={"REMOTE_ADDR": ip})
    assert page.status_code == 200, page.status_code
    data = {
        "email": email,
        "language": language,
        "name": name,
        "csrf_token": csrf_token(page.text),
        **extra,
    }
    return client.post(f"{prefix}/subscribe", data=data, environ_base={"REMOTE_ADDR": ip})


def get_subscriber(session: Session, email: str) -> Subscriber | None:
    """The row for `email` as it is in the database now."""
    session.expire_all()
    return session.scalar(select(Subscriber).where(Subscriber.email == email.lower()))


def event_kinds(session: Session, subscriber_id: int) -> list[str]:
    """The subscriber's history, oldest first."""
    session.expire_all()
    return list(
        session.scalars(
            select(SubscriberEvent.kind)
            .where(SubscriberEvent.subscriber_id == subscriber_id)
            .order_by(SubscriberEvent.id)
        )
    )


def one_email_to(sink: SmtpSink, address: str, count: int = 1) -> ReceivedMessage:
    """Wait for the `count`-th email to `address` and return it."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        messages = sink.to(address)
        if len(messages) >= count:
            return messages[count - 1]
        time.sleep(0.02)
    raise AssertionError(f"expected {count} emails to {address}, got {len(sink.to(address))}")


def upload_import(
    client: FlaskClient,
    body: bytes,
    *,
    filename: str = "list.csv",
    file_format: str = "auto",
    language: str = "en",
    start: bool = True,
) -> TestResponse:
    """Start an import from the staff page as staff do (the page's form, its CSRF token):
    upload, then (unless `start` is false) press "Start" on the preview page. The answer
    is the upload's (its Location is the job page)."""
    page = client.get("/staff/subscribers/import")
    response = client.post(
        "/staff/subscribers/import",
        data={
            "csrf_token": csrf_token(page.text),
            "format": file_format,
            "language": language,
            "file": (io.BytesIO(body), filename),
        },
        content_type="multipart/form-data",
    )
    if start and response.status_code == 303:
        start_previewed_import(client, response.headers["Location"])
    return response


def start_previewed_import(
    client: FlaskClient, job_path: str, *, encoding: str = "auto", action: str = "start"
) -> TestResponse:
    """Press a button of an import's preview page ("start", or "preview" again) with an
    encoding; nothing happens when the import is not waiting for it."""
    page = client.get(job_path)
    if 'value="start"' not in page.text and action == "start":
        return page  # failed already (nothing to start), or started
    return client.post(
        f"{job_path}/start",
        data={"csrf_token": csrf_token(page.text), "encoding": encoding, "action": action},
    )


def wait_for_import(client: FlaskClient, job_path: str) -> dict[str, Any]:
    """Poll an import's progress until it is done; its last progress answer."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        data = client.get(f"{job_path}/progress.json").get_json()
        if data["done"]:
            return dict(data)
        time.sleep(0.05)
    raise AssertionError("the import did not finish")


def path_of(url: str) -> str:
    """The path and query of an absolute link found in an email (the test client wants it)."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")
