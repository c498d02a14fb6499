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
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from webapp.core.clock import utcnow
from webapp.core.limits import body_limit, limiter
from webapp.db import begin_writing, get_database
from webapp.email_events.services import (
    PauseLimits,
    PayloadError,
    ReportedEvent,
    mailgun_signature_matches,
    parse_generic,
    parse_mailgun,
    parse_postmark,
    parse_sendgrid,
    parse_ses,
    pause_issues_over_limits,
    record_email_events,
    sendgrid_signature_matches,
)
from webapp.email_events.sns import SnsError, sns_url_allowed, verify_sns_message

log = logging.getLogger("readership.email_events")

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


@bp.post("/ses")
@limiter.exempt
@body_limit(MAX_BODY_BYTES)
def ses() -> ResponseReturnValue:
    """Amazon SES's bounce and complaint notifications through an SNS topic (HTTPS
    subscription). The SNS signature is checked against AWS's certificate, the topic must be
    one of `EMAIL_EVENTS_SES_TOPIC_ARNS`, and the subscription confirms itself."""
    topics = _topics(current_app.config.get("EMAIL_EVENTS_SES_TOPIC_ARNS"))
    if not topics:
        abort(404)
    try:
        message = json.loads(request.get_data(cache=True))
    except ValueError:
        return jsonify(error="the body must be an SNS message (JSON)"), 400
    if not isinstance(message, dict):
        return jsonify(error="the body must be an SNS message (JSON)"), 400
    test_hosts = tuple(current_app.config.get("EMAIL_EVENTS_SNS_TEST_HOSTS") or ())
    try:
        verify_sns_message(
            message,
            fetch=current_app.extensions["email_events.fetch"],
            certificates=current_app.extensions["email_events.sns_certificates"],
            test_hosts=test_hosts,
        )
    except SnsError as exc:
        return jsonify(error=f"not a genuine SNS message: {exc}"), 401
    if message.get("TopicArn") not in topics:
        return jsonify(error="not one of our SNS topics"), 403
    if message["Type"] == "SubscriptionConfirmation":
        return _confirm_subscription(str(message.get("SubscribeURL", "")), test_hosts)
    if message["Type"] != "Notification":
        return jsonify(recorded=0, repeated=0, ignored=1)
    return _record("ses", parse_ses, message)


def _topics(setting: Any) -> frozenset[str]:
    return frozenset(part.strip() for part in str(setting or "").split(",") if part.strip())


def _confirm_subscription(url: str, test_hosts: tuple[str, ...]) -> ResponseReturnValue:
    """Visit the SubscribeURL (an SNS host only), which is how SNS subscriptions confirm."""
    if not sns_url_allowed(url, test_hosts):
        return jsonify(error="the SubscribeURL is not on an SNS host"), 400
    try:
        current_app.extensions["email_events.fetch"](url)
    except (OSError, SnsError) as exc:
        log.warning("SNS subscription confirmation failed: %s", exc)
        return jsonify(error="the subscription could not be confirmed, SNS will retry"), 503
    log.info("SNS subscription confirmed for %s", urlsplit(url).hostname)
    return jsonify(confirmed=True)


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
        pause_issues_over_limits(
            session, result.issue_ids, limits=PauseLimits.from_config(current_app.config), now=now
        )
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
