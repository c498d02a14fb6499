"""The email-events feature's public face: record what relays report (bounces, complaints,
deliveries), once each, and apply it to the list.

A hard bounce marks the subscriber bounced and suppresses the address; a complaint
unsubscribes and suppresses; soft bounces feed the three-in-a-row rule; a delivery changes
no one. Nothing here ever lifts a suppression, so events may come in any order and any
number of times: a repeat (same provider, same event key) is recognised and changes nothing.
Each provider's endpoint checks its signature, then turns its payload into `ReportedEvent`s;
`record_email_events` is the one place they take effect.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp.core.addresses import InvalidEmail, normalise_email
from webapp.core.clock import as_utc
from webapp.digests.models import DeliveryStatus, DigestDelivery, DigestIssue, IssueStatus
from webapp.digests.services import delivery_id_of, pause_issue
from webapp.email_events.models import EmailEvent, EmailEventKind
from webapp.subscribers.services import (
    SOFT_BOUNCE_LIMIT,
    find_subscriber,
    record_complaint,
    record_permanent_failure,
    record_soft_bounce,
)

__all__ = [
    "MAX_EVENTS_PER_REQUEST",
    "GENERIC_TYPES",
    "IssueReports",
    "EmailEventKind",
    "PayloadError",
    "PauseLimits",
    "RecordResult",
    "ReportedEvent",
    "mailgun_signature_matches",
    "pause_issues_over_limits",
    "issue_reports",
    "parse_generic",
    "parse_mailgun",
    "parse_postmark",
    "parse_sendgrid",
    "parse_ses",
    "sendgrid_signature_matches",
    "record_email_events",
]

#: More events than this in one request is refused (relays batch far fewer).
MAX_EVENTS_PER_REQUEST = 1000


class PayloadError(ValueError):
    """The payload cannot be read as events; the message says what is wrong. Nothing was
    recorded."""


@dataclass(frozen=True)
class ReportedEvent:
    """One event read from a provider's payload, before it is recorded."""

    kind: EmailEventKind
    #: The recipient the event is about, normalised.
    address: str
    #: Unique per event for this provider (its id, or a hash of the event's content).
    event_key: str
    occurred_at: datetime
    message_id: str = ""
    #: The relay's diagnostic text.
    detail: str = ""


@dataclass(frozen=True)
class RecordResult:
    """What `record_email_events` did."""

    #: Events new to us, recorded and applied.
    recorded: int
    #: Events we had already (a provider's retry or repeat): nothing done.
    repeated: int
    #: The digest issues the new events were about.
    issue_ids: frozenset[int] = frozenset()


@dataclass(frozen=True)
class PauseLimits:
    """When an issue being sent pauses itself. The defaults are the providers' own lines:
    Amazon SES reviews an account at a 0.1% complaint rate and a 5% bounce rate (Gmail and
    Yahoo want spam under 0.3%)."""

    complaint_rate: float = 0.001
    bounce_rate: float = 0.05
    #: Rates on fewer sent messages than this are noise: one complaint in the first 20
    #: would be 5%.
    min_sent: int = 200

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> PauseLimits:
        """The limits as the app's configuration sets them."""
        return cls(
            complaint_rate=float(config.get("DIGEST_PAUSE_COMPLAINT_RATE", cls.complaint_rate)),
            bounce_rate=float(config.get("DIGEST_PAUSE_BOUNCE_RATE", cls.bounce_rate)),
            min_sent=int(config.get("DIGEST_PAUSE_MIN_SENT", cls.min_sent)),
        )


def record_email_events(
    session: Session,
    provider: str,
    events: Iterable[ReportedEvent],
    *,
    now: datetime,
    soft_bounce_limit: int = SOFT_BOUNCE_LIMIT,
) -> RecordResult:
    """Record each event once and apply it to the subscriber with its address (if any).
    The caller commits; an event already recorded is skipped, in its own savepoint, so the
    others in the same request still count."""
    recorded = repeated = 0
    issue_ids: set[int] = set()
    for event in events:
        row = EmailEvent(
            provider=provider,
            event_key=event.event_key[:200],
            kind=event.kind,
            message_id=event.message_id[:300],
            occurred_at=as_utc(event.occurred_at),
            received_at=now,
            detail=event.detail.replace(event.address, "<address>")[:1000],
        )
        _tie_to_delivery(session, row)
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
                subscriber = _apply(session, event, now, soft_bounce_limit)
                row.subscriber_id = subscriber.id if subscriber is not None else None
        except IntegrityError:
            repeated += 1
            continue
        recorded += 1
        if row.issue_id is not None:
            issue_ids.add(row.issue_id)
    return RecordResult(recorded=recorded, repeated=repeated, issue_ids=frozenset(issue_ids))


def _tie_to_delivery(session: Session, row: EmailEvent) -> None:
    """Fill in the digest delivery (and issue) the event's Message-ID names, if it is ours."""
    delivery_id = delivery_id_of(row.message_id)
    if delivery_id is None:
        return
    delivery = session.get(DigestDelivery, delivery_id)
    if delivery is not None:
        row.delivery_id, row.issue_id = delivery.id, delivery.issue_id


def pause_issues_over_limits(
    session: Session, issue_ids: Iterable[int], *, limits: PauseLimits, now: datetime
) -> list[int]:
    """Pause each of these issues that is being sent and whose complaint or hard-bounce
    rate (`issue_reports` over messages sent) passed `limits`; returns the paused ones.
    The note says which rate and by how much, for staff. The caller commits."""
    paused = []
    for issue_id in sorted(set(issue_ids)):
        issue = session.get(DigestIssue, issue_id, with_for_update=True)
        if issue is None or issue.status != IssueStatus.SENDING:
            continue
        reports = issue_reports(session, issue_id)
        if reports.sent < limits.min_sent:
            continue
        for count, limit, name in (
            (reports.complaints, limits.complaint_rate, "complaint-threshold"),
            (reports.hard_bounces, limits.bounce_rate, "bounce-threshold"),
        ):
            if reports.rate(count) > limit:
                note = (
                    f"{name}: {count} of {reports.sent} sent "
                    f"({reports.rate(count):.2%}, limit {limit:.2%})"
                )
                pause_issue(session, issue, now=now, note=note)
                paused.append(issue_id)
                break
    return paused


@dataclass(frozen=True)
class IssueReports:
    """What relays reported about one issue, next to what it sent."""

    #: Deliveries the mail server took.
    sent: int
    #: Readers whose copy a relay reported as delivered, bounced (hard, soft) or reported
    #: as spam: each delivery once per kind, however many reports said so.
    delivered: int
    hard_bounces: int
    soft_bounces: int
    complaints: int

    def rate(self, count: int) -> float:
        """`count` as a share of the messages sent (0 when nothing was sent)."""
        return count / self.sent if self.sent else 0.0


def issue_reports(session: Session, issue_id: int) -> IssueReports:
    """The figures of one issue: its sent deliveries, and for each kind of relay report
    the number of deliveries it was about."""
    per_kind: dict[str, int] = {
        str(kind): int(count)
        for kind, count in session.execute(
            select(EmailEvent.kind, func.count(func.distinct(EmailEvent.delivery_id)))
            .where(EmailEvent.issue_id == issue_id)
            .group_by(EmailEvent.kind)
        ).all()
    }
    return IssueReports(
        sent=_count(
            session,
            DigestDelivery,
            DigestDelivery.issue_id == issue_id,
            DigestDelivery.status == DeliveryStatus.SENT,
        ),
        delivered=per_kind.get(EmailEventKind.DELIVERED, 0),
        hard_bounces=per_kind.get(EmailEventKind.HARD_BOUNCE, 0),
        soft_bounces=per_kind.get(EmailEventKind.SOFT_BOUNCE, 0),
        complaints=per_kind.get(EmailEventKind.COMPLAINT, 0),
    )


def _count(session: Session, model: Any, *conditions: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model).where(*conditions)) or 0)


def _apply(session: Session, event: ReportedEvent, now: datetime, soft_bounce_limit: int) -> Any:
    if event.kind == EmailEventKind.HARD_BOUNCE:
        return record_permanent_failure(session, event.address, event.detail, now=now)
    if event.kind == EmailEventKind.SOFT_BOUNCE:
        return record_soft_bounce(
            session, event.address, event.detail, now=now, limit=soft_bounce_limit
        )
    if event.kind == EmailEventKind.COMPLAINT:
        return record_complaint(session, event.address, now=now)
    return find_subscriber(session, event.address)


# --- The generic endpoint's format ------------------------------------------------------

#: The `type` values of the generic format (a Postfix log reader, a script).
GENERIC_TYPES: Mapping[str, EmailEventKind] = {
    "bounce": EmailEventKind.HARD_BOUNCE,
    "hard_bounce": EmailEventKind.HARD_BOUNCE,
    "soft_bounce": EmailEventKind.SOFT_BOUNCE,
    "complaint": EmailEventKind.COMPLAINT,
    "delivered": EmailEventKind.DELIVERED,
    "delivery": EmailEventKind.DELIVERED,
}


def parse_generic(payload: Any, *, now: datetime) -> tuple[list[ReportedEvent], int]:
    """The events of a generic JSON body: one event object, or `{"events": [...]}`. Each
    has `type` (see `GENERIC_TYPES`), `email`, and optionally `id`, `message_id`, `at`
    (ISO 8601) and `reason`. Returns the events and how many had a type we do not know
    (skipped, not an error: a sender may report more kinds than we act on). Raises
    `PayloadError` for anything else."""
    batched = isinstance(payload, dict) and "events" in payload
    items = payload["events"] if batched else [payload]
    if not isinstance(items, list) or not items:
        raise PayloadError('expected an event object or {"events": [...]} with at least one')
    if len(items) > MAX_EVENTS_PER_REQUEST:
        raise PayloadError(f"at most {MAX_EVENTS_PER_REQUEST} events per request")
    events: list[ReportedEvent] = []
    unknown = 0
    for position, item in enumerate(items):
        where = f"event {position + 1}"
        if not isinstance(item, dict):
            raise PayloadError(f"{where}: expected an object")
        kind = GENERIC_TYPES.get(str(item.get("type", "")).strip().lower())
        if kind is None:
            unknown += 1
            continue
        events.append(
            ReportedEvent(
                kind=kind,
                address=_address(item.get("email"), where),
                event_key=_text(item.get("id"), where, "id") or _content_key(item),
                occurred_at=_moment(item.get("at"), where, now),
                message_id=_text(item.get("message_id"), where, "message_id"),
                detail=_text(item.get("reason"), where, "reason"),
            )
        )
    return events, unknown


def _address(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise PayloadError(f"{where}: email is missing")
    try:
        return normalise_email(value)
    except InvalidEmail as exc:
        raise PayloadError(f"{where}: email is not an address") from exc


def _text(value: Any, where: str, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str | int):
        raise PayloadError(f"{where}: {name} must be text")
    return str(value).replace("\x00", "").strip()


def _moment(value: Any, where: str, now: datetime) -> datetime:
    if value in (None, ""):
        return now
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise PayloadError(f"{where}: at is not an ISO 8601 time") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _unix_moment(value: Any, where: str, now: datetime) -> datetime:
    """A relay's Unix timestamp (seconds, maybe fractional) as a UTC time; `now` if absent."""
    if value is None:
        return now
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except (TypeError, ValueError, OverflowError) as exc:
        raise PayloadError(f"{where}: timestamp is not a number") from exc


def _content_key(item: Mapping[str, Any]) -> str:
    """A key for an event without an id: the same event sent twice has the same key."""
    canonical = json.dumps(item, sort_keys=True, ensure_ascii=False, default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


# --- Postmark ---------------------------------------------------------------------------

#: Postmark's bounce `Type`s that mean the address is dead, and those that mean "not now".
#: Other types (auto-responders, challenge mails, "subscribe" requests) are not bounces.
POSTMARK_HARD = frozenset({"HardBounce", "BadEmailAddress", "ManuallyDeactivated"})
POSTMARK_SOFT = frozenset({"SoftBounce", "Transient", "DnsError"})


def parse_postmark(payload: Any, *, now: datetime) -> tuple[list[ReportedEvent], int]:
    """The event of one Postmark webhook post (Postmark posts one event per request):
    `Bounce` (hard or soft by its `Type`), `SpamComplaint`, `Delivery`, and a
    `SubscriptionChange` that suppresses for a hard bounce or a complaint. Opens, clicks, a
    reactivation (we never lift a suppression) and other records are counted as ignored."""
    if not isinstance(payload, dict) or not isinstance(payload.get("RecordType"), str):
        raise PayloadError("expected a Postmark webhook object with a RecordType")
    record = payload["RecordType"]
    kind: EmailEventKind | None = None
    if record == "Bounce":
        bounce_type = str(payload.get("Type", ""))
        if bounce_type in POSTMARK_HARD:
            kind = EmailEventKind.HARD_BOUNCE
        elif bounce_type in POSTMARK_SOFT:
            kind = EmailEventKind.SOFT_BOUNCE
        address_field, time_field = "Email", "BouncedAt"
    elif record == "SpamComplaint":
        kind, address_field, time_field = EmailEventKind.COMPLAINT, "Email", "BouncedAt"
    elif record == "Delivery":
        kind, address_field, time_field = EmailEventKind.DELIVERED, "Recipient", "DeliveredAt"
    elif record == "SubscriptionChange" and payload.get("SuppressSending") is True:
        kind = {
            "HardBounce": EmailEventKind.HARD_BOUNCE,
            "SpamComplaint": EmailEventKind.COMPLAINT,
        }.get(str(payload.get("SuppressionReason")))
        address_field, time_field = "Recipient", "ChangedAt"
    if kind is None:
        return [], 1
    where = f"Postmark {record}"
    event_id = payload.get("ID")
    event = ReportedEvent(
        kind=kind,
        address=_address(payload.get(address_field), where),
        event_key=f"{record}:{event_id}" if event_id is not None else _content_key(payload),
        occurred_at=_moment(payload.get(time_field), where, now),
        message_id=_text(payload.get("MessageID"), where, "MessageID"),
        detail=_text(payload.get("Details"), where, "Details"),
    )
    return [event], 0


# --- Mailgun ----------------------------------------------------------------------------

#: Why Mailgun gave up on a message for good, when it says the address is dead or the
#: reader complained (`event-data.reason` of a permanent failure). "old" is a temporary
#: failure it retried until giving up: a soft bounce. Other reasons (an ESP block, an
#: unsubscribe on Mailgun's own list) are not the address's fault or not ours to act on.
MAILGUN_PERMANENT: Mapping[str, EmailEventKind] = {
    "bounce": EmailEventKind.HARD_BOUNCE,
    "suppress-bounce": EmailEventKind.HARD_BOUNCE,
    "suppress-complaint": EmailEventKind.COMPLAINT,
    "old": EmailEventKind.SOFT_BOUNCE,
}


def mailgun_signature_matches(payload: Any, signing_key: str) -> bool:
    """Mailgun's webhook signature: HMAC-SHA256 of timestamp + token with the webhook
    signing key, in the body's `signature` object."""
    signature = payload.get("signature") if isinstance(payload, dict) else None
    if not isinstance(signature, dict):
        return False
    timestamp, token, given = (signature.get(k) for k in ("timestamp", "token", "signature"))
    if not all(isinstance(value, str) and value for value in (timestamp, token, given)):
        return False
    expected = hmac.new(
        signing_key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, str(given))


def parse_mailgun(payload: Any, *, now: datetime) -> tuple[list[ReportedEvent], int]:
    """The event of one Mailgun webhook post (`event-data`): `failed` with severity
    "permanent" (see `MAILGUN_PERMANENT`), `complained` and `delivered`. A temporary failure
    is Mailgun still retrying (no bounce yet); opens, clicks and the rest are ignored."""
    data = payload.get("event-data") if isinstance(payload, dict) else None
    if not isinstance(data, dict) or not isinstance(data.get("event"), str):
        raise PayloadError("expected a Mailgun webhook object with event-data")
    name = data["event"]
    kind: EmailEventKind | None = None
    if name == "failed" and data.get("severity") == "permanent":
        kind = MAILGUN_PERMANENT.get(str(data.get("reason", "")))
    elif name == "complained":
        kind = EmailEventKind.COMPLAINT
    elif name == "delivered":
        kind = EmailEventKind.DELIVERED
    if kind is None:
        return [], 1
    where = f"Mailgun {name}"
    message = data.get("message")
    headers = message.get("headers") if isinstance(message, dict) else None
    status = data.get("delivery-status")
    occurred = _unix_moment(data.get("timestamp"), where, now)
    event = ReportedEvent(
        kind=kind,
        address=_address(data.get("recipient"), where),
        event_key=_text(data.get("id"), where, "id") or _content_key(data),
        occurred_at=occurred,
        message_id=_text(headers.get("message-id"), where, "message-id")
        if isinstance(headers, dict)
        else "",
        detail=_text(status.get("message"), where, "message") if isinstance(status, dict) else "",
    )
    return [event], 0


# --- SendGrid ---------------------------------------------------------------------------

#: Why SendGrid dropped a message without sending it (its own suppression lists), when that
#: tells us something about the address. "Unsubscribed Address" is SendGrid's list, not ours.
SENDGRID_DROPPED: Mapping[str, EmailEventKind] = {
    "Bounced Address": EmailEventKind.HARD_BOUNCE,
    "Invalid": EmailEventKind.HARD_BOUNCE,
    "Spam Reporting Address": EmailEventKind.COMPLAINT,
}


def sendgrid_signature_matches(
    public_key: str, signature: str, timestamp: str, body: bytes
) -> bool:
    """SendGrid's signed Event Webhook: an ECDSA (P-256, SHA-256) signature of the
    timestamp header followed by the raw body, checked with the verification key SendGrid
    shows (base64 of the DER public key)."""
    try:
        key = load_der_public_key(base64.b64decode(public_key))
        signed = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    if not isinstance(key, ec.EllipticCurvePublicKey) or not timestamp:
        return False
    try:
        key.verify(signed, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def parse_sendgrid(payload: Any, *, now: datetime) -> tuple[list[ReportedEvent], int]:
    """The events of one SendGrid post (a JSON array): `bounce` (hard; "blocked" is soft),
    `dropped` for a reason in `SENDGRID_DROPPED`, `spamreport` and `delivered`. Processed,
    deferred (SendGrid still retrying), opens, clicks and the rest are ignored, as is an
    event whose address is not one (SendGrid reports those too; none can be on our list)."""
    if not isinstance(payload, list) or not payload:
        raise PayloadError("expected a SendGrid event array with at least one event")
    if len(payload) > MAX_EVENTS_PER_REQUEST:
        raise PayloadError(f"at most {MAX_EVENTS_PER_REQUEST} events per request")
    events: list[ReportedEvent] = []
    ignored = 0
    for position, item in enumerate(payload):
        where = f"SendGrid event {position + 1}"
        if not isinstance(item, dict):
            raise PayloadError(f"{where}: expected an object")
        name = item.get("event")
        kind: EmailEventKind | None = None
        if name == "bounce":
            soft = item.get("type") == "blocked"
            kind = EmailEventKind.SOFT_BOUNCE if soft else EmailEventKind.HARD_BOUNCE
        elif name == "dropped":
            kind = SENDGRID_DROPPED.get(str(item.get("reason", "")))
        elif name == "spamreport":
            kind = EmailEventKind.COMPLAINT
        elif name == "delivered":
            kind = EmailEventKind.DELIVERED
        try:
            address = _address(item.get("email"), where) if kind is not None else ""
        except PayloadError:
            kind = None
        if kind is None:
            ignored += 1
            continue
        occurred = _unix_moment(item.get("timestamp"), where, now)
        events.append(
            ReportedEvent(
                kind=kind,
                address=address,
                event_key=_text(item.get("sg_event_id"), where, "sg_event_id")
                or _content_key(item),
                occurred_at=occurred,
                message_id=_text(item.get("smtp-id"), where, "smtp-id"),
                detail=_text(item.get("reason") or item.get("response"), where, "reason"),
            )
        )
    return events, ignored


# --- Amazon SES (through SNS) -------------------------------------------------------------


def parse_ses(notification: Mapping[str, Any], *, now: datetime) -> tuple[list[ReportedEvent], int]:
    """The events in an SNS `Notification` (already verified) from Amazon SES: its
    `Message` is SES's JSON, a notification (`notificationType`) or a configuration set's
    event (`eventType`). A bounce or complaint names several recipients at times: one event
    each. Permanent bounces are hard, Transient and Undetermined soft (SES sends them once
    it stops retrying). Sends, opens, clicks and the rest are ignored."""
    try:
        ses = json.loads(str(notification.get("Message", "")))
    except ValueError as exc:
        raise PayloadError("the SNS Message is not SES's JSON") from exc
    if not isinstance(ses, dict):
        raise PayloadError("the SNS Message is not SES's JSON object")
    name = ses.get("notificationType") or ses.get("eventType")
    mail: dict[str, Any] = ses["mail"] if isinstance(ses.get("mail"), dict) else {}
    headers: dict[str, Any] = (
        mail["commonHeaders"] if isinstance(mail.get("commonHeaders"), dict) else {}
    )
    message_id = str(headers.get("messageId") or mail.get("messageId") or "")
    sns_id = str(notification.get("MessageId", ""))
    kind: EmailEventKind | None = None
    recipients: list[Any] = []
    detail = ""
    if name == "Bounce" and isinstance(ses.get("bounce"), dict):
        bounce = ses["bounce"]
        hard = bounce.get("bounceType") == "Permanent"
        kind = EmailEventKind.HARD_BOUNCE if hard else EmailEventKind.SOFT_BOUNCE
        recipients = bounce.get("bouncedRecipients") or []
        detail = f"{bounce.get('bounceType')}: {bounce.get('bounceSubType')}"
    elif name == "Complaint" and isinstance(ses.get("complaint"), dict):
        kind = EmailEventKind.COMPLAINT
        recipients = ses["complaint"].get("complainedRecipients") or []
        detail = str(ses["complaint"].get("complaintFeedbackType") or "")
    elif name == "Delivery" and isinstance(ses.get("delivery"), dict):
        kind = EmailEventKind.DELIVERED
        recipients = [{"emailAddress": a} for a in ses["delivery"].get("recipients") or []]
        detail = str(ses["delivery"].get("smtpResponse") or "")
    if kind is None or not isinstance(recipients, list):
        return [], 1
    occurred = _moment(notification.get("Timestamp"), "SES notification", now)
    events = []
    for recipient in recipients:
        if not isinstance(recipient, dict):
            raise PayloadError("SES recipients must be objects")
        address = _address(recipient.get("emailAddress"), "SES recipient")
        events.append(
            ReportedEvent(
                kind=kind,
                address=address,
                event_key=f"{sns_id}:{address}" if sns_id else _content_key(ses),
                occurred_at=occurred,
                message_id=message_id,
                detail=str(recipient.get("diagnosticCode") or detail),
            )
        )
    return events, 0
