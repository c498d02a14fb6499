"""A real digest, DKIM-signed, sent through the SMTP sink and verified as a receiver would."""

from __future__ import annotations

from typing import Any

import dkim
import pytest
from flask import Flask
from sqlalchemy.orm import Session

from tests.digests.factories import approved_issue
from tests.emails.conftest import DkimKey
from tests.helpers.smtp import SmtpSink
from webapp.core.clock import FrozenClock
from webapp.db import get_database
from webapp.digests.services import EngineSettings, Worker
from webapp.outbox.gateway import get_mailer


@pytest.fixture
def app_config(app_config: dict[str, Any], dkim_key: DkimKey) -> dict[str, Any]:
    """DKIM on, signing for a domain of its own (not MAIL_FROM's test.example)."""
    return {
        **app_config,
        "DKIM_PRIVATE_KEY_PATH": str(dkim_key.path),
        "DKIM_SELECTOR": "digest2026",
        "DKIM_DOMAIN": "mail.test.example",
    }


def test_every_digest_message_arrives_signed_and_verifies(
    app: Flask, db_session: Session, clock: FrozenClock, smtp_sink: SmtpSink, dkim_key: DkimKey
) -> None:
    issue_id, readers = approved_issue(app, db_session, clock, readers=3)
    worker = Worker(
        get_database(app),
        get_mailer(app),
        secret=app.config["SECRET_KEY"],
        now=clock.now,
        settings=EngineSettings(),
    )

    assert worker.run().sent == 3
    received = smtp_sink.wait_for(3)

    assert sorted(m.rcpt_tos[0] for m in received) == sorted(r.email for r in readers)
    lookup = dkim_key.dnsfunc("digest2026", "mail.test.example")
    for message in received:
        assert message.raw.count(b"DKIM-Signature:") == 1
        assert dkim.verify(message.raw, dnsfunc=lookup)
        signature = " ".join(str(message.message["DKIM-Signature"]).split())
        assert "d=mail.test.example;" in signature and "s=digest2026;" in signature
        assert "c=relaxed/relaxed;" in signature and "a=rsa-sha256;" in signature
        # The one-click unsubscribe headers are covered, so nobody can swap the link.
        assert "list-unsubscribe : list-unsubscribe-post" in signature
        assert message.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # Changed in transit, the same message no longer verifies.
    first = received[0].raw
    assert not dkim.verify(first.replace(b"/unsubscribe/", b"/unsubscribe/x", 1), dnsfunc=lookup)
