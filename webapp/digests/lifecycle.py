"""An issue's life: a draft is approved (its delivery rows written), sends, may be paused and
resumed, and is sent when no row is left; plus how far it has come.

The moves between statuses are `ISSUE_MOVES`, the one table every change goes through.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    SQLColumnExpression,
    String,
    and_,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.orm import Session

from webapp.core.states import IllegalMove, StateMachine
from webapp.digests.models import (
    DeliveryStatus,
    DigestDelivery,
    DigestIssue,
    IssueArticle,
    IssueStatus,
)
from webapp.subscribers.models import Subscriber, SubscriberStatus


class IssueStateError(IllegalMove):
    """The issue is not in a state that allows this (e.g. approving a sent issue)."""


#: Where an issue may go. A skipped or sent issue is done; "build again" replaces a draft
#: by deleting it, not by a move.
ISSUE_MOVES = StateMachine(
    "issue",
    {
        IssueStatus.SKIPPED: set(),
        IssueStatus.DRAFT: {IssueStatus.SENDING},
        IssueStatus.SENDING: {IssueStatus.PAUSED, IssueStatus.SENT},
        IssueStatus.PAUSED: {IssueStatus.SENDING},
        IssueStatus.SENT: set(),
    },
    error=IssueStateError,
)

#: Where one delivery may go: a try that fails for now stays pending (a retry); the others
#: are final. The worker's conditional UPDATEs take their WHERE from this table.
DELIVERY_MOVES = StateMachine(
    "delivery",
    {
        DeliveryStatus.PENDING: {
            DeliveryStatus.PENDING,
            DeliveryStatus.SENT,
            DeliveryStatus.FAILED,
            DeliveryStatus.SKIPPED,
        },
        DeliveryStatus.SENT: set(),
        DeliveryStatus.FAILED: set(),
        DeliveryStatus.SKIPPED: set(),
    },
)


# --- Issue life cycle ------------------------------------------------------------------------


def eligible_subscribers(language: str | SQLColumnExpression[str]) -> ColumnElement[bool]:
    """The one "wants this digest" rule: the condition a subscriber meets to get an issue in
    `language` (confirmed, not suppressed, not paused, and the language among theirs).

    `language` is a code (approval selects the recipients by it) or a column holding one
    (the worker asks it again of each delivery's issue right before sending)."""
    return and_(
        Subscriber.status == SubscriberStatus.CONFIRMED,
        Subscriber.suppressed.is_(False),
        Subscriber.paused.is_(False),
        Subscriber.digest_languages.like(literal("%,", String) + language + ",%"),
    )


def approve_issue(
    session: Session, issue: DigestIssue, *, now: datetime, staff_id: int | None = None
) -> int:
    """Approve a draft: write its delivery rows (one per eligible subscriber, in one INSERT
    ... SELECT) and mark it sending. Returns the number of recipients; the caller commits.

    Raises `IssueStateError` unless the issue is a draft with at least one article.
    """
    # Checked before any row is written; "resume" is the other way to sending.
    ISSUE_MOVES.check(
        IssueStatus(issue.status), IssueStatus.SENDING, issue.id, only_from={IssueStatus.DRAFT}
    )
    if not issue.items:
        raise IssueStateError(f"issue {issue.id} has no articles")
    _carry(session, issue)
    rows = select(
        literal(issue.id),
        Subscriber.id,
        literal(DeliveryStatus.PENDING.value),
        literal(0),
        literal(now, DigestDelivery.next_attempt_at.type),
    ).where(eligible_subscribers(issue.language))
    session.execute(
        insert(DigestDelivery).from_select(
            ["issue_id", "subscriber_id", "status", "attempts", "next_attempt_at"], rows
        )
    )
    issue.recipients = int(
        session.scalar(
            select(func.count())
            .select_from(DigestDelivery)
            .where(DigestDelivery.issue_id == issue.id)
        )
        or 0
    )
    ISSUE_MOVES.move(issue, IssueStatus.SENDING, only_from={IssueStatus.DRAFT})
    issue.approved_at = now
    issue.approved_by_id = staff_id
    issue.updated_at = now
    issue.note = ""
    if issue.recipients == 0:
        _finish(issue, now)
    return issue.recipients


def _carry(session: Session, issue: DigestIssue) -> None:
    """Record what the approved issue carries. A "new" article another approved issue
    already carried (two drafts built from the same week) is dropped: an article reaches
    readers as new once."""
    ids = [int(item["article_id"]) for item in issue.items]
    carried = set(
        session.scalars(
            select(IssueArticle.article_id).where(
                IssueArticle.article_id.in_(ids), IssueArticle.issue_id != issue.id
            )
        )
    )
    kept = [
        dict(item)
        for item in issue.items
        if item["section"] != "new" or int(item["article_id"]) not in carried
    ]
    if not kept:
        raise IssueStateError(f"issue {issue.id}: its articles went out in another issue")
    if len(kept) != len(issue.items):
        issue.items = kept
    seen: set[int] = set()
    for item in kept:
        article_id = int(item["article_id"])
        if article_id not in seen:
            seen.add(article_id)
            session.add(
                IssueArticle(issue_id=issue.id, article_id=article_id, section=item["section"])
            )
    session.flush()


def pause_issue(session: Session, issue: DigestIssue, *, now: datetime, note: str = "") -> None:
    """Stop sending `issue` (rows already claimed finish their current message). Caller commits."""
    ISSUE_MOVES.move(issue, IssueStatus.PAUSED)
    issue.note = note
    issue.updated_at = now


def resume_issue(session: Session, issue: DigestIssue, *, now: datetime) -> None:
    """Send a paused issue again, failed-for-now rows included. Caller commits."""
    ISSUE_MOVES.move(issue, IssueStatus.SENDING, only_from={IssueStatus.PAUSED})
    issue.note = ""
    issue.updated_at = now
    # Rows waiting for a long backoff are due again: staff resumed because the cause is fixed.
    session.execute(
        update(DigestDelivery)
        .where(
            DigestDelivery.issue_id == issue.id,
            DigestDelivery.status == DeliveryStatus.PENDING,
            DigestDelivery.claimed_by.is_(None),
        )
        .values(next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )


def _finish(issue: DigestIssue, now: datetime) -> None:
    ISSUE_MOVES.move(issue, IssueStatus.SENT)
    issue.finished_at = now
    issue.updated_at = now


def finish_done_issues(session: Session, now: datetime) -> list[int]:
    """Mark sending issues without pending rows as sent; returns their ids. Caller commits."""
    pending = (
        select(DigestDelivery.id)
        .where(
            DigestDelivery.issue_id == DigestIssue.id,
            DigestDelivery.status == DeliveryStatus.PENDING,
        )
        .exists()
    )
    done = list(
        session.scalars(
            select(DigestIssue).where(DigestIssue.status == IssueStatus.SENDING, ~pending)
        )
    )
    for issue in done:
        _finish(issue, now)
    return [issue.id for issue in done]


# --- Progress --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """How far an issue has come."""

    issue_id: int
    status: str
    recipients: int
    sent: int
    failed: int
    skipped: int
    pending: int
    #: Messages per second over the last minute.
    rate: float
    #: Seconds until done at `rate` (None when nothing is moving).
    eta_seconds: int | None
    note: str

    @property
    def done(self) -> int:
        """Rows finished one way or another."""
        return self.sent + self.failed + self.skipped

    @property
    def percent(self) -> int:
        """Share done, 0–100."""
        return int(self.done * 100 / self.recipients) if self.recipients else 100

    def as_dict(self) -> dict[str, Any]:
        """For the JSON progress endpoint."""
        return {
            "issue_id": self.issue_id,
            "status": self.status,
            "recipients": self.recipients,
            "sent": self.sent,
            "failed": self.failed,
            "skipped": self.skipped,
            "left": self.pending,
            "rate": round(self.rate, 1),
            "eta_seconds": self.eta_seconds,
            "percent": self.percent,
            "note": self.note,
        }


def issue_progress(session: Session, issue: DigestIssue, now: datetime) -> Progress:
    """Counts per status, the current rate and the time to finish."""
    counts = dict.fromkeys(DeliveryStatus, 0)
    for status, count in session.execute(
        select(DigestDelivery.status, func.count())
        .where(DigestDelivery.issue_id == issue.id)
        .group_by(DigestDelivery.status)
    ):
        counts[DeliveryStatus(status)] = int(count)
    window = 60
    recent = int(
        session.scalar(
            select(func.count())
            .select_from(DigestDelivery)
            .where(
                DigestDelivery.issue_id == issue.id,
                DigestDelivery.status == DeliveryStatus.SENT,
                DigestDelivery.sent_at >= now - timedelta(seconds=window),
            )
        )
        or 0
    )
    rate = recent / window
    pending = counts[DeliveryStatus.PENDING]
    eta = int(pending / rate) if rate > 0 and pending else (0 if not pending else None)
    return Progress(
        issue_id=issue.id,
        status=str(issue.status),
        recipients=issue.recipients,
        sent=counts[DeliveryStatus.SENT],
        failed=counts[DeliveryStatus.FAILED],
        skipped=counts[DeliveryStatus.SKIPPED],
        pending=pending,
        rate=rate,
        eta_seconds=eta,
        note=issue.note,
    )
