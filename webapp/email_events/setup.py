"""Wires the email-events endpoints into an app."""

from __future__ import annotations

from flask import Flask
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import delete
from sqlalchemy.orm import Session

from webapp.email_events.models import EmailEvent


def init_app(app: Flask, csrf: CSRFProtect) -> None:
    """Register `/email-events/...`; relays authenticate by signature or token, not CSRF."""
    from webapp.email_events import views
    from webapp.email_events.sns import fetch_url

    # SNS signing certificates, fetched once per URL; tests may replace the fetcher.
    app.extensions["email_events.sns_certificates"] = {}
    app.extensions.setdefault("email_events.fetch", fetch_url)
    csrf.exempt(views.bp)
    app.register_blueprint(views.bp)


def erase_email_events(session: Session, email: str, subscriber_id: int | None) -> None:
    """Erasure: the events about this subscriber go with them."""
    if subscriber_id is not None:
        session.execute(delete(EmailEvent).where(EmailEvent.subscriber_id == subscriber_id))
