"""What staff, jobs and other features do with digest issues: build on schedule, edit,
test-send, approve, pause and resume, follow the progress, and run the sending worker.

This module is the feature's public face; `building`, `content`, `lifecycle` and `worker`
are its private parts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from babel.support import NullTranslations
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from emails.rendering import RenderedEmail, load_translations
from webapp.core.clock import as_utc
from webapp.digests.building import BuildResult, build_digests, get_digest_settings
from webapp.digests.clicks import (
    ClickLinkError,
    ClickTarget,
    LinkClicks,
    record_click,
    redirect_is_on,
    resolve_click,
)
from webapp.digests.clicks import clicks_per_link as _clicks_per_link
from webapp.digests.content import compile_issue, delivery_id_of, delivery_message_id
from webapp.digests.lifecycle import (
    IssueStateError,
    Progress,
    approve_issue,
    eligible_subscribers,
    issue_progress,
    pause_issue,
    resume_issue,
)
from webapp.digests.models import CARRYING_STATUSES, DigestIssue, IssueStatus
from webapp.digests.worker import EngineSettings, SendCounts, Worker, engine_settings
from webapp.outbox.models import OutboxMessage, OutboxStatus
from webapp.outbox.services import Mailer

__all__ = [
    "ArchiveEntry",
    "ClickLinkError",
    "ClickTarget",
    "EngineSettings",
    "INTRO_MAX",
    "IssueStateError",
    "LinkClicks",
    "NotEditable",
    "Progress",
    "SUBJECT_MAX",
    "SendCounts",
    "Worker",
    "approve_issue",
    "delivery_id_of",
    "delivery_message_id",
    "archive_entries",
    "clicks_per_link",
    "drop_item",
    "eligible_subscribers",
    "engine_settings",
    "is_public",
    "issue_progress",
    "issue_translations",
    "latest_issues",
    "move_item",
    "pause_issue",
    "preview",
    "queue_test_send",
    "record_click",
    "redirect_is_on",
    "resolve_click",
    "resume_issue",
    "run_build",
    "same_week_issue",
    "update_issue",
]

#: Longest subject and intro staff may write.
SUBJECT_MAX = 200
INTRO_MAX = 5000


def issue_translations(mailer: Mailer, languages: Sequence[str]) -> dict[str, NullTranslations]:
    """The email catalogue of each language (the issue's default subject and intro)."""
    return {lang: load_translations(mailer.renderer.translations_dir, lang) for lang in languages}


def run_build(
    session: Session, app: Flask, mailer: Mailer, *, now: datetime, force: bool = False
) -> list[BuildResult]:
    """Build this slot's issues and, with "send automatically" on, approve the drafts."""
    languages = list(app.config["LANGUAGES"])
    results = build_digests(
        session,
        now=now,
        languages=languages,
        translations=issue_translations(mailer, languages),
        top_reads_days=int(app.config.get("TOP_READS_DAYS", 7)),
        top_reads_count=int(app.config.get("TOP_READS_COUNT", 6)),
        force=force,
    )
    if get_digest_settings(session).auto_send:
        for result in results:
            if result.status == IssueStatus.DRAFT and result.issue_id is not None:
                issue = session.get(DigestIssue, result.issue_id)
                assert issue is not None
                approve_issue(session, issue, now=now)
                session.commit()
    return results


def latest_issues(session: Session, limit: int = 100) -> list[DigestIssue]:
    """Issues, newest first."""
    return list(
        session.scalars(
            select(DigestIssue)
            .order_by(DigestIssue.created_at.desc(), DigestIssue.id.desc())
            .limit(limit)
        )
    )


class NotEditable(ValueError):
    """Only drafts can be edited."""


def update_issue(
    issue: DigestIssue,
    *,
    subject: str,
    intro: str,
    item_order: Sequence[int],
    dropped: set[int],
    now: datetime,
) -> None:
    """Set subject and intro; put items in `item_order` (article ids; ids not named keep their
    place at the end) without those in `dropped`. Caller commits."""
    if issue.status != IssueStatus.DRAFT:
        raise NotEditable(issue.id)
    by_id = {int(item["article_id"]): item for item in issue.items}
    ordered = [by_id[i] for i in dict.fromkeys(item_order) if i in by_id]
    ordered += [item for i, item in by_id.items() if i not in set(item_order)]
    issue.items = [dict(item) for item in ordered if int(item["article_id"]) not in dropped]
    issue.subject = " ".join(subject.split())[:SUBJECT_MAX]
    issue.intro = intro.replace("\r\n", "\n").strip()[:INTRO_MAX]
    issue.updated_at = now


def move_item(issue: DigestIssue, article_id: int, offset: int, now: datetime) -> None:
    """Move one item up (-1) or down (+1) within its section. Caller commits."""
    if issue.status != IssueStatus.DRAFT:
        raise NotEditable(issue.id)
    items = [dict(item) for item in issue.items]
    index = next((i for i, it in enumerate(items) if int(it["article_id"]) == article_id), None)
    if index is None:
        return
    target = index + offset
    if 0 <= target < len(items) and items[target]["section"] == items[index]["section"]:
        items[index], items[target] = items[target], items[index]
        issue.items = items
        issue.updated_at = now


def drop_item(issue: DigestIssue, article_id: int, now: datetime) -> None:
    """Take one article out of a draft. Caller commits."""
    if issue.status != IssueStatus.DRAFT:
        raise NotEditable(issue.id)
    issue.items = [dict(it) for it in issue.items if int(it["article_id"]) != article_id]
    issue.updated_at = now


def preview(
    session: Session,
    mailer: Mailer,
    issue: DigestIssue,
    *,
    secret: str,
    now: datetime,
    as_donor: bool,
    email: str = "reader@example.org",
    name: str = "",
) -> RenderedEmail:
    """The issue as one reader would get it (a sample reader; links are not signed for a real
    subscriber, id 0 matches nobody)."""
    compiled = compile_issue(session, mailer, issue, secret=secret, now=now)
    return compiled.render_for(subscriber_id=0, email=email, name=name, is_donor=as_donor)


def queue_test_send(
    session: Session,
    mailer: Mailer,
    issue: DigestIssue,
    *,
    to: str,
    name: str,
    as_donor: bool,
    secret: str,
    now: datetime,
    unsubscribe_mailto: str | None = None,
) -> OutboxMessage:
    """Put the issue, as `to` would get it, in the outbox (the caller commits and may
    deliver it at once). The subject is marked as a test."""
    compiled = compile_issue(
        session, mailer, issue, secret=secret, now=now, unsubscribe_mailto=unsubscribe_mailto
    )
    raw = compiled.message_for(subscriber_id=0, email=to, name=name, is_donor=as_donor, now=now)
    row = OutboxMessage(
        purpose="digest_test",
        to_address=to,
        language=issue.language,
        subject=f"[TEST] {issue.subject}"[:998],
        raw=raw.replace(b"\r\nSubject: ", b"\r\nSubject: [TEST] ", 1),
        status=OutboxStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class ArchiveEntry:
    """A sent issue on the public archive list."""

    id: int
    subject: str
    sent_at: datetime | None


def archive_entries(session: Session, language: str, limit: int = 200) -> list[ArchiveEntry]:
    """Sent (or sending) issues of a language, newest first."""
    rows = session.execute(
        select(DigestIssue.id, DigestIssue.subject, DigestIssue.approved_at)
        .where(
            DigestIssue.language == language,
            DigestIssue.status.in_([IssueStatus.SENT, IssueStatus.SENDING, IssueStatus.PAUSED]),
        )
        .order_by(DigestIssue.approved_at.desc(), DigestIssue.id.desc())
        .limit(limit)
    )
    return [ArchiveEntry(*row) for row in rows]


def is_public(issue: DigestIssue) -> bool:
    """Issues have a public page once approved."""
    return issue.status in CARRYING_STATUSES


#: Issues in two languages built within this of each other are the same week's.
SAME_WEEK = timedelta(days=3, hours=12)


def same_week_issue(session: Session, issue: DigestIssue, language: str) -> int | None:
    """The id of the public issue in `language` of the same week as `issue` (built for the
    same slot, or else the closest build within half a week), or None."""
    public = (DigestIssue.language == language, DigestIssue.status.in_(CARRYING_STATUSES))
    if issue.slot is not None:
        same_slot = session.scalar(
            select(DigestIssue.id).where(*public, DigestIssue.slot == issue.slot).limit(1)
        )
        if same_slot is not None:
            return int(same_slot)
    built = as_utc(issue.created_at)
    nearby = session.execute(
        select(DigestIssue.id, DigestIssue.created_at).where(
            *public,
            DigestIssue.created_at >= built - SAME_WEEK,
            DigestIssue.created_at <= built + SAME_WEEK,
        )
    ).all()
    if not nearby:
        return None
    return int(min(nearby, key=lambda row: abs(as_utc(row[1]) - built))[0])


def clicks_per_link(session: Session, issue: DigestIssue) -> list[LinkClicks]:
    """How often each link of `issue` was followed through the click redirect, most
    followed first (links nobody followed are not listed). Counts only: nothing says who."""
    return _clicks_per_link(session, issue.id)
