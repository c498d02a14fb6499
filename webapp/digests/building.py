"""Building issues: when the weekly slot comes, one issue per language from the top reads and
the articles no approved issue carried yet, published or imported since the language's
previous issue (see `new_articles_condition`). Nothing new: a skipped issue whose note
tells staff why."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_date
from babel.support import NullTranslations
from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp.articles.models import Article
from webapp.articles.services import get_top_reads
from webapp.core.clock import as_utc
from webapp.db import get_or_create_row
from webapp.digests.models import (
    CARRYING_STATUSES,
    DigestIssue,
    DigestSettings,
    IssueArticle,
    IssueStatus,
)
from webapp.site.services import get_site_settings

log = logging.getLogger("readership.digests")

#: Note of an issue skipped because nothing was published since the previous one.
NO_NEW_ARTICLES = "no-new-articles"


def _(message: str) -> str:
    """Marks a message for the catalogue; it is translated in the issue's language later."""
    return message


DEFAULT_SUBJECT = _("%(publication)s: the week of %(date)s")
DEFAULT_INTRO = _(
    "Here is what we published this week, and what readers read most. Thank you for reading."
)


def get_digest_settings(session: Session) -> DigestSettings:
    """The one settings row, created with defaults the first time (race-safe)."""
    return get_or_create_row(session, DigestSettings)


def zone_of(settings: DigestSettings) -> ZoneInfo:
    """The settings' time zone (UTC when the name is unknown)."""
    try:
        return ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def latest_slot(settings: DigestSettings, now: datetime) -> datetime:
    """The most recent scheduled build time at or before `now`, in UTC."""
    zone = zone_of(settings)
    local_now = as_utc(now).astimezone(zone)
    hour, minute = (int(part) for part in settings.send_time.split(":"))
    days_back = (local_now.weekday() - settings.weekday) % 7
    day = (local_now - timedelta(days=days_back)).date()
    slot = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
    if slot > local_now:
        slot -= timedelta(days=7)
    return slot.astimezone(ZoneInfo("UTC"))


def next_slot(settings: DigestSettings, now: datetime) -> datetime:
    """The next scheduled build time after `now`, in UTC."""
    return latest_slot(settings, now) + timedelta(days=7)


@dataclass(frozen=True)
class BuildResult:
    """What building did for one language."""

    language: str
    #: The issue built (draft, sending when sent automatically, or skipped); None when this
    #: slot had an issue already.
    issue_id: int | None
    status: IssueStatus | None

    def __str__(self) -> str:
        if self.issue_id is None:
            return f"{self.language}: already built"
        return f"{self.language}: issue {self.issue_id} {self.status}"


def build_digests(
    session: Session,
    *,
    now: datetime,
    languages: Sequence[str],
    translations: dict[str, NullTranslations],
    top_reads_days: int = 7,
    top_reads_count: int = 6,
    force: bool = False,
) -> list[BuildResult]:
    """Build this slot's issue for every language that has none yet (commits each one).

    `force` (a build run by hand) builds even when the slot has its issue; that issue gets no
    slot. Approval and sending are left to the caller (see `services.approve_issue`).
    """
    settings = get_digest_settings(session)
    slot: datetime | None = latest_slot(settings, now)
    results = []
    for language in languages:
        language_slot = slot
        taken = session.scalar(
            select(DigestIssue.id).where(
                DigestIssue.language == language, DigestIssue.slot == language_slot
            )
        )
        if taken is not None:
            if not force:
                results.append(BuildResult(language, None, None))
                continue
            language_slot = None
        issue = _build_issue(
            session,
            settings,
            language,
            language_slot,
            now=now,
            gettext=translations.get(language, NullTranslations()).gettext,
            top_reads_days=top_reads_days,
            top_reads_count=top_reads_count,
        )
        try:
            session.commit()
        except IntegrityError:  # another process built this slot a moment ago
            session.rollback()
            results.append(BuildResult(language, None, None))
            continue
        log.info("digest %s: issue %s %s", language, issue.id, issue.status)
        results.append(BuildResult(language, issue.id, IssueStatus(issue.status)))
    return results


#: An import that was still committing while the previous issue was built stamped its
#: articles a moment *before* that build, which did not see them: imports this close before
#: the previous build still count as new (what that build carried is excluded anyway).
IMPORT_OVERLAP = timedelta(hours=1)


def _new_since(session: Session, language: str, *, now: datetime, default_days: int) -> datetime:
    """When the language's previous issue that went to readers was built (skipped issues
    and drafts nobody approved carried nothing). Before any issue went out: the start of the
    first issue's window (so what an unapproved draft offered is offered again), or
    `default_days` back when nothing was ever built."""
    previous = session.scalar(
        select(func.max(DigestIssue.created_at)).where(
            DigestIssue.language == language, DigestIssue.status.in_(CARRYING_STATUSES)
        )
    )
    if previous is not None:
        return as_utc(previous)
    first_window = session.scalar(
        select(func.min(DigestIssue.new_since)).where(DigestIssue.language == language)
    )
    default = now - timedelta(days=default_days)
    return min(as_utc(first_window), default) if first_window is not None else default


def new_articles_condition(
    session: Session, language: str, *, since: datetime, now: datetime
) -> ColumnElement[bool]:
    """What makes an article new for the language's next issue: no approved issue carried
    it, and it was published *or imported* after `since` (an article that reaches the feed
    late, dated before the previous issue, is still new), and it is not dated in the future.
    """
    carried = select(IssueArticle.article_id).where(IssueArticle.article_id == Article.id)
    return and_(
        Article.language == language,
        ~carried.exists(),
        or_(Article.published_at > since, Article.created_at > since - IMPORT_OVERLAP),
        or_(Article.published_at.is_(None), Article.published_at <= now),
    )


def _build_issue(
    session: Session,
    settings: DigestSettings,
    language: str,
    slot: datetime | None,
    *,
    now: datetime,
    gettext: Callable[[str], str],
    top_reads_days: int,
    top_reads_count: int,
) -> DigestIssue:
    translate = gettext
    since = _new_since(session, language, now=now, default_days=top_reads_days)
    top = get_top_reads(session, language, now=now, days=top_reads_days, limit=top_reads_count)
    top_ids = [read.article.id for read in top]
    fresh = new_articles_condition(session, language, since=since, now=now)
    new_articles = list(
        session.scalars(
            select(Article.id)
            .where(fresh, Article.id.not_in(top_ids) if top_ids else Article.id.is_not(None))
            .order_by(
                func.coalesce(Article.published_at, Article.created_at).desc(), Article.id.desc()
            )
            .limit(max(1, settings.new_articles_limit))
        )
    )
    new_in_top = (
        session.scalar(select(Article.id).where(Article.id.in_(top_ids), fresh).limit(1))
        if top_ids
        else None
    )
    publication = get_site_settings(session).publication_name
    issue = DigestIssue(
        language=language,
        slot=slot,
        created_at=now,
        new_since=since,
        subject=translate(DEFAULT_SUBJECT)
        % {"publication": publication, "date": format_date(now, "long", locale=language)},
        intro=translate(DEFAULT_INTRO),
        items=[{"article_id": i, "section": "top"} for i in top_ids]
        + [{"article_id": i, "section": "new"} for i in new_articles],
    )
    if not new_articles and new_in_top is None:
        issue.status = IssueStatus.SKIPPED
        issue.note = NO_NEW_ARTICLES
    else:
        issue.status = IssueStatus.DRAFT
    session.add(issue)
    session.flush()
    return issue
