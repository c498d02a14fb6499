"""The subscription lifecycle: signup, double opt-in, preferences, unsubscribe, bounces,
staff status changes and the clean-up of old pending signups.

Every function takes the session, the time `now` and whatever else it needs; none commits
(the caller commits once, so a change, its history event and its queued email land
together) and none reads the request. Emails are queued in the outbox in the same
transaction; the caller delivers them after the commit (`webapp.subscribers.mail`).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp.core.addresses import InvalidEmail, normalise_email
from webapp.subscribers import mail
from webapp.subscribers.erasure import erase_person, erase_subscriber
from webapp.subscribers.links import (
    LinkPurpose,
    LinkTarget,
    confirm_url,
    link_url,
    list_unsubscribe_headers,
    preferences_url,
    unsubscribe_url,
)
from webapp.subscribers.models import (
    ConsentRecord,
    EventActor,
    EventKind,
    InvalidTransition,
    Subscriber,
    SubscriberEvent,
    SubscriberSource,
    SubscriberStatus,
    SuppressionReason,
    add_event,
    change_status,
    pack_languages,
)
from webapp.subscribers.settings import ListSettings, list_settings

__all__ = [
    "CONSENT_WORDING_VERSION",
    "LinkPurpose",
    "ListSettings",
    "ConfirmOutcome",
    "SignupOutcome",
    "SignupRequest",
    "SignupResult",
    "StaffAction",
    "UnsubscribeHow",
    "add_event",
    "erase_person",
    "erase_subscriber",
    "confirm_subscription",
    "confirm_url",
    "expire_pending_signups",
    "find_subscriber",
    "link_url",
    "list_settings",
    "list_unsubscribe_headers",
    "pause_subscription",
    "preferences_url",
    "record_complaint",
    "record_permanent_failure",
    "record_soft_bounce",
    "request_subscription",
    "resubscribe_from_link",
    "resume_subscription",
    "staff_change_status",
    "suppress_on_permanent_failure",
    "unsubscribe",
    "unsubscribe_url",
    "update_preferences",
]

#: Version of the consent sentence shown next to the signup forms; bump it when the
#: wording changes so each consent record says which sentence the reader agreed to.
CONSENT_WORDING_VERSION = "2026-11-v1"
#: Soft bounces in a row after which an address is suppressed.
SOFT_BOUNCE_LIMIT = 3
#: Suppression reasons a fresh double opt-in may lift (the mailbox works again).
_LIFTED_BY_OPT_IN = frozenset({SuppressionReason.HARD_BOUNCE, SuppressionReason.SOFT_BOUNCES})


def find_subscriber(session: Session, email: str) -> Subscriber | None:
    """The subscriber with this address (any spelling), or None (also for invalid input)."""
    try:
        normalised = normalise_email(email)
    except InvalidEmail:
        return None
    return session.scalar(select(Subscriber).where(Subscriber.email == normalised))


# --- Signup ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SignupRequest:
    """What a signup form sent, already validated by its form."""

    email: str
    language: str
    source: SubscriberSource
    name: str = ""
    #: The page the form was on (query string dropped by the caller).
    page_url: str | None = None
    ip_hash: str | None = None
    user_agent_hash: str | None = None
    wording_version: str = CONSENT_WORDING_VERSION


class SignupResult(enum.StrEnum):
    """What a signup did; for logs and tests only, never shown (no address enumeration)."""

    CREATED = "created"
    CONFIRMATION_RESENT = "confirmation_resent"
    RESUBSCRIBE_CONFIRMATION_SENT = "resubscribe_confirmation_sent"
    MANAGE_LINK_SENT = "manage_link_sent"
    THROTTLED = "throttled"
    SUPPRESSED = "suppressed"


@dataclass
class SignupOutcome:
    """The result of `request_subscription`: what happened and the emails to deliver."""

    result: SignupResult
    message_ids: list[int] = field(default_factory=list)


def request_subscription(
    session: Session, mailer: Any, request: SignupRequest, *, settings: ListSettings, now: datetime
) -> SignupOutcome:
    """Handle a signup form for any address, known or not, and say what was done.

    * A new address becomes a pending subscriber with a consent record and gets a
      confirmation email.
    * A pending address gets a fresh confirmation (its language and name follow the form).
    * A confirmed address gets a "manage your subscription" email instead.
    * An unsubscribed address, or one that bounced, gets a confirmation to come back; it
      stays as it is until the link's button is pressed.
    * An address suppressed for a complaint or by staff gets nothing.

    Whatever the case, at most one email per address goes out per `settings.resend_after`,
    however many IPs ask (the time is kept in the row and claimed with a conditional
    UPDATE, so parallel requests cannot both send). The caller shows the same page in every
    case. Raises `InvalidEmail` for an address the form should have refused.
    """
    email = normalise_email(request.email)
    language = settings.language_or_default(request.language)
    subscriber = session.scalar(select(Subscriber).where(Subscriber.email == email))
    if subscriber is None:
        subscriber = _create_pending(session, request, email, language, now)
        if subscriber is not None:
            _add_consent(session, subscriber, request, language, now)
            add_event(
                session,
                subscriber,
                EventKind.SIGNUP,
                now=now,
                actor=EventActor.READER,
                source=request.source.value,
                language=language,
            )
            message_id = _send_confirmation(session, mailer, subscriber, language, settings, now)
            return SignupOutcome(SignupResult.CREATED, [message_id])
        # Another request created the row a moment ago: it is a known address now.
        subscriber = session.scalar(select(Subscriber).where(Subscriber.email == email))
        if subscriber is None:  # pragma: no cover - the unique row vanished again
            return SignupOutcome(SignupResult.THROTTLED)

    if subscriber.suppressed and subscriber.suppression_reason not in _LIFTED_BY_OPT_IN:
        return SignupOutcome(SignupResult.SUPPRESSED)
    if not _claim_send_slot(session, subscriber, now, settings.resend_after):
        return SignupOutcome(SignupResult.THROTTLED)

    status = SubscriberStatus(subscriber.status)
    if status == SubscriberStatus.CONFIRMED and not subscriber.suppressed:
        add_event(
            session,
            subscriber,
            EventKind.SIGNUP_REPEATED,
            now=now,
            actor=EventActor.READER,
            source=request.source.value,
        )
        context = {"preferences_url": _prefs_url(subscriber, settings, language)}
        message_id = mail.queue_subscription_email(
            session,
            mailer,
            template="manage_subscription",
            subscriber=subscriber,
            language=language,
            context=context,
            now=now,
        )
        add_event(session, subscriber, EventKind.MANAGE_LINK_SENT, now=now, language=language)
        return SignupOutcome(SignupResult.MANAGE_LINK_SENT, [message_id])

    if status == SubscriberStatus.PENDING:
        subscriber.language = language
        subscriber.digest_languages = pack_languages([language])
        if request.name:
            subscriber.name = request.name
            subscriber.name_key = request.name.casefold()
        result = SignupResult.CONFIRMATION_RESENT
    else:
        # Unsubscribed, bounced, or confirmed-but-suppressed after a bounce: a fresh opt-in.
        result = SignupResult.RESUBSCRIBE_CONFIRMATION_SENT
    _add_consent(session, subscriber, request, language, now)
    add_event(
        session,
        subscriber,
        EventKind.SIGNUP_REPEATED,
        now=now,
        actor=EventActor.READER,
        source=request.source.value,
    )
    message_id = _send_confirmation(session, mailer, subscriber, language, settings, now)
    return SignupOutcome(result, [message_id])


def _create_pending(
    session: Session, request: SignupRequest, email: str, language: str, now: datetime
) -> Subscriber | None:
    """Insert a pending subscriber; None when a parallel request inserted it first."""
    name = request.name.strip()[:200]
    subscriber = Subscriber(
        email=email,
        name=name,
        name_key=name.casefold(),
        language=language,
        digest_languages=pack_languages([language]),
        status=SubscriberStatus.PENDING,
        source=request.source,
        created_at=now,
        last_confirmation_sent_at=now,
    )
    try:
        # A savepoint: losing the race must not undo what the caller's transaction holds
        # (a donation paid in the same transaction, say).
        with session.begin_nested():
            session.add(subscriber)
    except IntegrityError:
        return None
    return subscriber


def _claim_send_slot(
    session: Session, subscriber: Subscriber, now: datetime, window: timedelta
) -> bool:
    """Take the address's one email per `window`; False when one went out within it."""
    cutoff = now - window
    result = session.execute(
        update(Subscriber)
        .where(
            Subscriber.id == subscriber.id,
            or_(
                Subscriber.last_confirmation_sent_at.is_(None),
                Subscriber.last_confirmation_sent_at <= cutoff,
            ),
        )
        .values(last_confirmation_sent_at=now)
        .execution_options(synchronize_session=False)
    )
    claimed: bool = result.rowcount == 1  # type: ignore[attr-defined]
    if claimed:
        subscriber.last_confirmation_sent_at = now
    return claimed


def _add_consent(
    session: Session, subscriber: Subscriber, request: SignupRequest, language: str, now: datetime
) -> ConsentRecord:
    consent = ConsentRecord(
        subscriber=subscriber,
        at=now,
        source=request.source.value,
        page_url=(request.page_url or None) and request.page_url[:500],
        wording_version=request.wording_version,
        language=language,
        ip_hash=request.ip_hash,
        user_agent_hash=request.user_agent_hash,
    )
    session.add(consent)
    return consent


def _prefs_url(subscriber: Subscriber, settings: ListSettings, language: str | None) -> str:
    return link_url(
        subscriber, LinkPurpose.PREFERENCES, settings.base_url, settings.secret, language=language
    )


def _send_confirmation(
    session: Session,
    mailer: Any,
    subscriber: Subscriber,
    language: str,
    settings: ListSettings,
    now: datetime,
) -> int:
    session.flush()  # the link needs the id
    url = link_url(
        subscriber,
        LinkPurpose.CONFIRM,
        settings.base_url,
        settings.secret,
        now=now,
        language=language,
    )
    message_id = mail.queue_subscription_email(
        session,
        mailer,
        template="confirm_subscription",
        subscriber=subscriber,
        language=language,
        now=now,
        context={
            "confirm_url": url,
            "link_valid_hours": int(settings.confirm_max_age.total_seconds() // 3600),
        },
    )
    add_event(session, subscriber, EventKind.CONFIRMATION_SENT, now=now, language=language)
    return message_id


# --- Double opt-in ----------------------------------------------------------------------


@dataclass
class ConfirmOutcome:
    """The result of `confirm_subscription`."""

    subscriber: Subscriber
    #: True when the subscription was confirmed already (pressing twice is fine).
    already_confirmed: bool
    message_ids: list[int] = field(default_factory=list)


def confirm_subscription(
    session: Session,
    mailer: Any,
    target: LinkTarget,
    *,
    settings: ListSettings,
    now: datetime,
    ip_hash: str | None = None,
) -> ConfirmOutcome:
    """Confirm the subscription a valid confirm link points at (the POST of its page).

    Idempotent: a confirmed subscriber stays as is and gets no second welcome email. A
    pending, unsubscribed or bounced subscriber becomes confirmed, the latest unconfirmed
    consent record is stamped (time and IP hash), a bounce suppression is lifted (the
    reader just proved the mailbox works) and the welcome email is queued.
    """
    subscriber = target.subscriber
    previous = SubscriberStatus(subscriber.status)
    if previous == SubscriberStatus.CONFIRMED:
        return ConfirmOutcome(subscriber, already_confirmed=True)
    consent = session.scalar(
        select(ConsentRecord)
        .where(ConsentRecord.subscriber_id == subscriber.id, ConsentRecord.confirmed_at.is_(None))
        .order_by(ConsentRecord.id.desc())
        .limit(1)
    )
    if consent is not None:
        consent.confirmed_at = now
        consent.confirm_ip_hash = ip_hash
        if consent.language in settings.languages and consent.language != subscriber.language:
            subscriber.language = consent.language
            subscriber.digest_languages = pack_languages([consent.language, *subscriber.languages])
    change_status(subscriber, SubscriberStatus.CONFIRMED, now=now)
    subscriber.soft_bounce_count = 0
    if subscriber.suppressed and subscriber.suppression_reason in _LIFTED_BY_OPT_IN:
        _unsuppress(session, subscriber, now, actor=EventActor.READER)
    kind = EventKind.CONFIRMED if previous == SubscriberStatus.PENDING else EventKind.RESUBSCRIBED
    add_event(session, subscriber, kind, now=now, actor=EventActor.READER, via="confirm_link")
    message_ids = []
    if not subscriber.suppressed:
        message_ids.append(_send_welcome(session, mailer, subscriber, settings, now))
    return ConfirmOutcome(subscriber, already_confirmed=False, message_ids=message_ids)


def _send_welcome(
    session: Session, mailer: Any, subscriber: Subscriber, settings: ListSettings, now: datetime
) -> int:
    context = {
        "preferences_url": preferences_url(subscriber, settings.base_url, settings.secret),
        "unsubscribe_url": unsubscribe_url(subscriber, settings.base_url, settings.secret),
    }
    return mail.queue_subscription_email(
        session,
        mailer,
        template="subscription_confirmed",
        subscriber=subscriber,
        language=subscriber.language,
        context=context,
        now=now,
        headers=list_unsubscribe_headers(subscriber, settings.base_url, settings.secret),
    )


# --- Preferences and unsubscribe --------------------------------------------------------


def update_preferences(
    session: Session,
    subscriber: Subscriber,
    *,
    languages: Sequence[str],
    offered: Sequence[str],
    now: datetime,
) -> bool:
    """Set the digest languages (at least one of `offered`); True when something changed.

    The main language stays when it is still chosen, otherwise the first chosen one (in
    the order the list offers them) becomes the main language.
    """
    chosen = [code for code in offered if code in set(languages)]
    if not chosen:
        raise ValueError("choose at least one language")
    main = subscriber.language if subscriber.language in chosen else chosen[0]
    packed = pack_languages([main, *chosen])
    if main == subscriber.language and packed == subscriber.digest_languages:
        return False
    before = subscriber.languages
    subscriber.language = main
    subscriber.digest_languages = packed
    add_event(
        session,
        subscriber,
        EventKind.PREFERENCES_CHANGED,
        now=now,
        actor=EventActor.READER,
        languages_before=before,
        languages=subscriber.languages,
    )
    return True


def pause_subscription(session: Session, subscriber: Subscriber, *, now: datetime) -> bool:
    """Pause the digest of a confirmed subscriber; True when it was not paused yet."""
    if subscriber.status != SubscriberStatus.CONFIRMED or subscriber.paused:
        return False
    subscriber.paused = True
    subscriber.paused_at = now
    add_event(session, subscriber, EventKind.PAUSED, now=now, actor=EventActor.READER)
    return True


def resume_subscription(session: Session, subscriber: Subscriber, *, now: datetime) -> bool:
    """End a pause; True when the subscriber was paused."""
    if not subscriber.paused:
        return False
    subscriber.paused = False
    subscriber.paused_at = None
    add_event(session, subscriber, EventKind.RESUMED, now=now, actor=EventActor.READER)
    return True


class UnsubscribeHow(enum.StrEnum):
    """Which way someone left the list (kept in the history)."""

    ONE_CLICK = "one_click"  # RFC 8058 POST from the mail client
    UNSUBSCRIBE_PAGE = "unsubscribe_page"  # the button on the unsubscribe link's page
    PREFERENCES = "preferences"
    STAFF = "staff"
    IMPORT = "import"
    COMPLAINT = "complaint"


def unsubscribe(
    session: Session,
    subscriber: Subscriber,
    *,
    how: UnsubscribeHow,
    now: datetime,
    actor: EventActor = EventActor.READER,
    staff_user_id: int | None = None,
) -> bool:
    """Take the subscriber off the list; True when they were on it. Idempotent."""
    if not change_status(subscriber, SubscriberStatus.UNSUBSCRIBED, now=now):
        return False
    subscriber.paused = False
    subscriber.paused_at = None
    add_event(
        session,
        subscriber,
        EventKind.UNSUBSCRIBED,
        now=now,
        actor=actor,
        staff_user_id=staff_user_id,
        how=how.value,
    )
    return True


def resubscribe_from_link(session: Session, subscriber: Subscriber, *, now: datetime) -> bool:
    """Put the subscriber back on the list from their preferences page; True when it changed.

    Chosen on purpose: no new opt-in email is needed here, because the signed preferences
    link was mailed to this very address, so using it already proves control of the
    mailbox (the same proof a confirmation link gives). A bounce suppression is lifted for
    the same reason; a suppression by staff or for a spam complaint is not, and such a
    subscriber stays off the list.
    """
    if subscriber.suppressed and subscriber.suppression_reason not in _LIFTED_BY_OPT_IN:
        return False
    previous = SubscriberStatus(subscriber.status)
    if previous == SubscriberStatus.CONFIRMED and not subscriber.suppressed:
        return False
    change_status(subscriber, SubscriberStatus.CONFIRMED, now=now)
    subscriber.soft_bounce_count = 0
    if subscriber.suppressed:
        _unsuppress(session, subscriber, now, actor=EventActor.READER)
    add_event(
        session,
        subscriber,
        EventKind.RESUBSCRIBED,
        now=now,
        actor=EventActor.READER,
        via="preferences_link",
        previous=previous.value,
    )
    return True


# --- Bounces and complaints -------------------------------------------------------------


def _scrub(reason: str, address: str) -> str:
    # SMTP replies often quote the address; history never keeps it.
    return reason.replace(address, "<address>")[:300]


def _suppress(
    session: Session,
    subscriber: Subscriber,
    reason: SuppressionReason,
    now: datetime,
    *,
    actor: EventActor = EventActor.SYSTEM,
    staff_user_id: int | None = None,
) -> bool:
    if subscriber.suppressed and subscriber.suppression_reason == reason.value:
        return False
    subscriber.suppressed = True
    subscriber.suppression_reason = reason.value
    subscriber.suppressed_at = now
    add_event(
        session,
        subscriber,
        EventKind.SUPPRESSED,
        now=now,
        actor=actor,
        staff_user_id=staff_user_id,
        reason=reason.value,
    )
    return True


def _unsuppress(
    session: Session,
    subscriber: Subscriber,
    now: datetime,
    *,
    actor: EventActor,
    staff_user_id: int | None = None,
) -> None:
    reason = subscriber.suppression_reason
    subscriber.suppressed = False
    subscriber.suppression_reason = None
    subscriber.suppressed_at = None
    add_event(
        session,
        subscriber,
        EventKind.UNSUPPRESSED,
        now=now,
        actor=actor,
        staff_user_id=staff_user_id,
        reason=reason,
    )


def record_permanent_failure(
    session: Session, address: str, reason: str, *, now: datetime
) -> Subscriber | None:
    """A 5xx answer for `address`: mark the subscriber bounced and suppressed.

    Returns the subscriber, or None when the address is not on the list. The caller commits.
    """
    subscriber = find_subscriber(session, address)
    if subscriber is None or subscriber.erased_at is not None:
        return None
    if change_status(subscriber, SubscriberStatus.BOUNCED, now=now):
        add_event(
            session,
            subscriber,
            EventKind.BOUNCED,
            now=now,
            bounce="permanent",
            reason=_scrub(reason, subscriber.email),
        )
    _suppress(session, subscriber, SuppressionReason.HARD_BOUNCE, now)
    return subscriber


def record_soft_bounce(
    session: Session, address: str, reason: str, *, now: datetime, limit: int = SOFT_BOUNCE_LIMIT
) -> Subscriber | None:
    """A temporary failure that the sender gave up on; `limit` in a row suppress the address."""
    subscriber = find_subscriber(session, address)
    if subscriber is None or subscriber.erased_at is not None:
        return None
    subscriber.soft_bounce_count = (subscriber.soft_bounce_count or 0) + 1
    add_event(
        session,
        subscriber,
        EventKind.SOFT_BOUNCE,
        now=now,
        count=subscriber.soft_bounce_count,
        reason=_scrub(reason, subscriber.email),
    )
    if subscriber.soft_bounce_count >= limit:
        if change_status(subscriber, SubscriberStatus.BOUNCED, now=now):
            add_event(session, subscriber, EventKind.BOUNCED, now=now, bounce="soft", count=limit)
        _suppress(session, subscriber, SuppressionReason.SOFT_BOUNCES, now)
    return subscriber


def record_complaint(session: Session, address: str, *, now: datetime) -> Subscriber | None:
    """A spam complaint (feedback loop): unsubscribe and suppress the address."""
    subscriber = find_subscriber(session, address)
    if subscriber is None or subscriber.erased_at is not None:
        return None
    unsubscribe(session, subscriber, how=UnsubscribeHow.COMPLAINT, now=now, actor=EventActor.SYSTEM)
    _suppress(session, subscriber, SuppressionReason.COMPLAINT, now)
    return subscriber


def suppress_on_permanent_failure(session: Session, to_address: str, reason: str) -> None:
    """A 5xx bounce suppresses the subscriber (the receiver of `outbox.signals.permanent_failure`,
    connected in `webapp.features`)."""
    from webapp.core.clock import SystemClock, get_clock

    try:
        now = get_clock().now()
    except RuntimeError:  # called outside an app context (a bare worker script)
        now = SystemClock().now()
    record_permanent_failure(session, to_address, reason, now=now)


# --- Staff ------------------------------------------------------------------------------


class StaffAction(enum.StrEnum):
    """What staff can do to one subscriber's status."""

    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"
    SUPPRESS = "suppress"
    UNSUPPRESS = "unsuppress"


def staff_change_status(
    session: Session,
    subscriber: Subscriber,
    action: StaffAction,
    *,
    staff: Any,
    now: datetime,
    ip: str | None,
) -> bool:
    """Apply a staff action, record it in the history and the audit log; True when it changed
    something. Raises `InvalidTransition` for an action that does not apply (e.g. acting on
    an erased person)."""
    from webapp.staff.services import record_audit

    if subscriber.erased_at is not None:
        raise InvalidTransition("erased")
    before = {"status": str(subscriber.status), "suppressed": subscriber.suppressed}
    staff_id = getattr(staff, "id", None)
    changed = False
    if action == StaffAction.CONFIRM:
        changed = change_status(subscriber, SubscriberStatus.CONFIRMED, now=now)
        if changed:
            subscriber.soft_bounce_count = 0
    elif action == StaffAction.UNSUBSCRIBE:
        changed = unsubscribe(
            session,
            subscriber,
            how=UnsubscribeHow.STAFF,
            now=now,
            actor=EventActor.STAFF,
            staff_user_id=staff_id,
        )
    elif action == StaffAction.SUPPRESS:
        changed = _suppress(
            session,
            subscriber,
            SuppressionReason.STAFF,
            now,
            actor=EventActor.STAFF,
            staff_user_id=staff_id,
        )
    elif action == StaffAction.UNSUPPRESS and subscriber.suppressed:
        _unsuppress(session, subscriber, now, actor=EventActor.STAFF, staff_user_id=staff_id)
        subscriber.soft_bounce_count = 0
        changed = True
    if not changed:
        return False
    after = {"status": str(subscriber.status), "suppressed": subscriber.suppressed}
    if action == StaffAction.CONFIRM:
        add_event(
            session,
            subscriber,
            EventKind.STATUS_CHANGED,
            now=now,
            actor=EventActor.STAFF,
            staff_user_id=staff_id,
            before=before["status"],
            after=after["status"],
        )
    record_audit(
        session,
        actor=staff,
        action=f"subscribers.{action.value}",
        target_type="subscriber",
        target_id=subscriber.id,
        details={"before": before, "after": after},
        ip=ip,
        now=now,
    )
    return True


# --- Clean-up ---------------------------------------------------------------------------


def expire_pending_signups(session: Session, *, now: datetime, max_age: timedelta) -> int:
    """Delete pending signups whose last confirmation request is older than `max_age`.

    Their consent records and history go with them and the emails queued for them are
    scrubbed from the outbox, so nothing personal is kept about someone who never
    confirmed. Asking again (a new confirmation email) starts a new keeping time. Pending
    rows that came from a CSV import expire the same way, counted from their original
    signup time: we never mail them a confirmation, so they could never confirm. Returns
    how many were removed; the caller commits.
    """
    cutoff = now - max_age
    stale = and_(
        Subscriber.status == SubscriberStatus.PENDING,
        Subscriber.erased_at.is_(None),
        func.coalesce(Subscriber.last_confirmation_sent_at, Subscriber.created_at) < cutoff,
    )
    # One statement selects and deletes, so nothing can change in between: a signup
    # confirmed (or asked again) a moment before is no longer stale and keeps its row,
    # consents and history. Only what it really deleted is scrubbed below.
    gone = session.execute(
        delete(Subscriber)
        .where(stale)
        .returning(Subscriber.id, Subscriber.email)
        .execution_options(synchronize_session=False)
    ).all()
    for start in range(0, len(gone), 500):
        chunk = gone[start : start + 500]
        ids = [row.id for row in chunk]
        # Consents and history go with the row (ON DELETE CASCADE); deleted here as well so
        # a connection without foreign-key enforcement leaves no orphan either.
        session.execute(delete(SubscriberEvent).where(SubscriberEvent.subscriber_id.in_(ids)))
        session.execute(delete(ConsentRecord).where(ConsentRecord.subscriber_id.in_(ids)))
        mail.scrub_outbox(session, subscriber_ids=ids, addresses=[row.email for row in chunk])
    removed = len(gone)
    session.expire_all()
    return removed
