"""`POST /stripe/webhook`: Stripe's events, verified on the raw body, applied once.

Answers: 400 for a bad or missing signature, a stale timestamp, a body that is not an
event, or an event whose fields are missing or of a kind its handler cannot read (nothing
written); 200 for an event applied now, one applied before, or a type we do
not handle; 500 when applying failed (nothing written, so Stripe's retry applies it once);
503 when no webhook secret is configured.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import stripe
from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import DataError

from webapp.core.clock import utcnow
from webapp.core.limits import limiter
from webapp.db import get_database
from webapp.donations.books import DuplicateEvent, apply_event, books_context
from webapp.outbox.services import deliver_now, get_mailer

log = logging.getLogger("readership.donations")

bp = Blueprint("stripe_webhook", __name__)

#: What a handler raises on an event it cannot read (a field missing, a list for a number, an
#: amount no column holds): the event's fault, not a passing failure, so no 500.
_NOT_UNDERSTOOD = (KeyError, TypeError, ValueError, AttributeError, DataError)

#: Stripe sends events of at most a few hundred kilobytes; refuse anything much larger.
MAX_EVENT_BYTES = 1024 * 1024


def _signed_at(header: str | None) -> int:
    for part in (header or "").split(","):
        key, _, value = part.partition("=")
        if key.strip() == "t" and value.strip().isdigit():
            return int(value)
    return 0


def _answer(code: int, **body: Any) -> ResponseReturnValue:
    return jsonify(body), code


@bp.post("/stripe/webhook")
@limiter.exempt
def stripe_webhook() -> ResponseReturnValue:
    """Verify and apply one Stripe event."""
    secret = current_app.config.get("STRIPE_WEBHOOK_SECRET")
    if not secret:
        log.error("a Stripe webhook arrived but STRIPE_WEBHOOK_SECRET is not set")
        return _answer(503, error="webhook secret not configured")
    if (request.content_length or 0) > MAX_EVENT_BYTES:
        return _answer(413, error="payload too large")
    payload = request.get_data(cache=False)
    header = request.headers.get("Stripe-Signature")
    tolerance = int(current_app.config["STRIPE_WEBHOOK_TOLERANCE"])
    try:
        stripe.WebhookSignature.verify_header(payload, header, secret, tolerance=tolerance)
    except (stripe.SignatureVerificationError, UnicodeDecodeError) as exc:
        log.warning("Stripe webhook refused: %s", exc)
        return _answer(400, error="invalid signature")
    if _signed_at(header) > time.time() + tolerance:
        # Stripe's check only looks back; a timestamp far ahead is as suspect as an old one.
        return _answer(400, error="invalid signature")
    try:
        event = json.loads(payload)
    except (UnicodeDecodeError, ValueError):
        return _answer(400, error="body is not JSON")
    if not (
        isinstance(event, dict)
        and isinstance(event.get("id"), str)
        and isinstance(event.get("type"), str)
        and isinstance((event.get("data") or {}).get("object"), dict)
    ):
        return _answer(400, error="not a Stripe event")

    books = books_context(current_app._get_current_object(), utcnow())  # type: ignore[attr-defined]
    database = get_database()
    with database.session() as session:
        try:
            outcome = apply_event(session, event, books)
            session.commit()
        except DuplicateEvent:
            session.rollback()
            return _answer(200, status="duplicate")
        except _NOT_UNDERSTOOD:
            session.rollback()
            log.exception("Stripe event %s (%s) not understood", event["id"], event["type"])
            return _answer(400, error="event not understood")
        except Exception:
            session.rollback()
            log.exception(
                "Stripe event %s (%s) failed; Stripe will retry", event["id"], event["type"]
            )
            return _answer(500, error="event could not be applied")
    if books.queued and current_app.config.get("DELIVER_EMAIL_IMMEDIATELY", True):
        deliver_now(database, get_mailer(), books.queued, utcnow())
    return _answer(200, status="ok", outcome=outcome)
