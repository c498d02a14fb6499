"""`POST /email-events/<provider>`: what relays report after sending (bounces, complaints).

Each endpoint is off (404) until its setting is set. Answers: 401 for a missing or wrong
credential and 400 for a body that is not events (nothing written in either case); 200 with
what was recorded, repeated and ignored otherwise. Relays retry on anything but 2xx, and a
retry of an event already recorded changes nothing.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, abort, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from webapp.core.clock import utcnow
from webapp.core.limits import body_limit, limiter
from webapp.db import begin_writing, get_database
from webapp.email_events.services import PayloadError, parse_generic, record_email_events

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
    payload = request.get_json(silent=True)
    if payload is None:
        return jsonify(error="the body must be JSON"), 400
    now = utcnow()
    try:
        events, ignored = parse_generic(payload, now=now)
    except PayloadError as exc:
        return jsonify(error=str(exc)), 400
    with get_database().session() as session:
        begin_writing(session)
        result = record_email_events(session, "generic", events, now=now)
        session.commit()
    return jsonify(recorded=result.recorded, repeated=result.repeated, ignored=ignored)
