"""`POST /email-events/<provider>`: what relays report after sending (bounces, complaints).

Each endpoint is off (404) until its setting is set. Answers: 401 for a missing or wrong
credential and 400 for a body that is not events (nothing written in either case); 200 with
what was recorded, repeated and ignored otherwise. Relays retry on anything but 2xx, and a
retry of an event already recorded changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Blueprint, abort, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from webapp.core.clock import utcnow
from webapp.core.limits import body_limit, limiter
from webapp.db import begin_writing, get_database
from webapp.email_events.services import (
    PayloadError,
    ReportedEvent,
    mailgun_signature_matches,
    parse_generic,
    parse_mailgun,
    parse_postmark,
    parse_sendgrid,
    record_email_events,
    sendgrid_signature_matches,
)

bp = Blueprint("email_events", __name__, url_prefix="/email-events")

#: Relays post batches of at most a few hundred events; refuse anything much larger.
MAX_BODY_BYTES = 1024 * 1024


@bp.post("/generic")
@limiter.exempt
@body_limit(MAX_BODY_BYTES)
def generic() -> ResponseReturnValue:
    """Events in our own JSON format, for anything that is not one of the known relays (a
    Postfix log reader, a script), authenticated by `Authorization: Bearer <token>`."""
    token = current_app.config.get("EMAIL_EVENTS_GENERIC_TOKEN")
    if not token:
        abort(404)
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return jsonify(error="missing or wrong bearer token"), 401
    return _record("generic", parse_generic)


@bp.post("/postmark")
@limiter.exempt
@body_limit(MAX_BODY_BYTES)
def postmark() -> ResponseReturnValue:
    """Postmark's webhooks, authenticated by the user name and password put in the webhook
    URL (`https://user:password@host/email-events/postmark`), which arrive as HTTP Basic."""
    credentials = current_app.config.get("EMAIL_EVENTS_POSTMARK_CREDENTIALS")
    if not credentials:
        abort(404)
    if not _basic_auth_matches(request.headers.get("Authorization", ""), str(credentials)):
        return (
            jsonify(error="missing or wrong credentials"),
            401,
            {"WWW-Authenticate": 'Basic realm="email-events"'},
        )
    return _record("postmark", parse_postmark)


@bp.post("/mailgun")
@limiter.exempt
@body_limit(MAX_BODY_BYTES)
def mailgun() -> ResponseReturnValue:
    """Mailgun's webhooks, each signed with the domain's webhook signing key."""
    signing_key = current_app.config.get("EMAIL_EVENTS_MAILGUN_SIGNING_KEY")
    if not signing_key:
        abort(404)
    payload: Any = request.get_json(silent=True)
    if not mailgun_signature_matches(payload, str(signing_key)):
        return jsonify(error="missing or wrong signature"), 401
    return _record("mailgun", parse_mailgun, payload)


#: The headers of SendGrid's signed Event Webhook.
SENDGRID_SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"


@bp.post("/sendgrid")
@limiter.exempt
@body_limit(MAX_BODY_BYTES)
def sendgrid() -> ResponseReturnValue:
    """SendGrid's Event Webhook with Signed Event Webhook turned on: the ECDSA signature
    of the timestamp and the raw body is checked before the body is read."""
    public_key = current_app.config.get("EMAIL_EVENTS_SENDGRID_PUBLIC_KEY")
    if not public_key:
        abort(404)
    body = request.get_data(cache=True)
    if not sendgrid_signature_matches(
        str(public_key),
        request.headers.get(SENDGRID_SIGNATURE, ""),
        request.headers.get(SENDGRID_TIMESTAMP, ""),
        body,
    ):
        return jsonify(error="missing or wrong signature"), 401
    return _record("sendgrid", parse_sendgrid)


Parser = Callable[..., tuple[list[ReportedEvent], int]]


def _record(provider: str, parse: Parser, payload: Any = None) -> ResponseReturnValue:
    """Parse the JSON body with `parse`, then record its events in one transaction."""
    if payload is None:
        payload = request.get_json(silent=True)
    if payload is None:
        return jsonify(error="the body must be JSON"), 400
    now: datetime = utcnow()
    try:
        events, ignored = parse(payload, now=now)
    except PayloadError as exc:
        return jsonify(error=str(exc)), 400
    with get_database().session() as session:
        begin_writing(session)
        result = record_email_events(session, provider, events, now=now)
        session.commit()
    return jsonify(recorded=result.recorded, repeated=result.repeated, ignored=ignored)


def _basic_auth_matches(header: str, expected: str) -> bool:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        given = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(given, expected.encode())
