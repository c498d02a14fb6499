"""Read-only queries behind the staff pages: the list (search, filters, keyset paging),
counts, and one subscriber's history.

Paging is by id (newest first) with a keyset ("ids below N"), so page 500 costs what
page 1 costs. Search is a prefix search on the address or the case-folded name written
as a range (`email >= 'ann' AND email < 'ano'`), which a plain b-tree index answers on
both SQLite and PostgreSQL (see `_search_text` in models).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from webapp.core.clock import as_utc
from webapp.subscribers.models import (
    ConsentRecord,
    EventActor,
    EventKind,
    Subscriber,
    SubscriberEvent,
    SubscriberSource,
    SubscriberStatus,
)

PER_PAGE = 50


@dataclass(frozen=True)
class SubscriberFilter:
    """What the staff list shows: a search prefix and exact filters (all optional)."""

    q: str = ""
    status: str = ""
    language: str = ""
    source: str = ""

    def as_args(self) -> dict[str, str]:
        """Non-empty values, for building links that keep the filter."""
        return {k: v for k, v in vars(self).items() if v}


@dataclass(frozen=True)
class SubscriberPage:
    """One page of the list plus what the pager needs."""

    rows: list[Subscriber]
    total: int
    #: Id to pass as `before` for the next (older) page, or None on the last page.
    next_before: int | None
    #: Id to pass as `after` for the previous (newer) page, or None on the first page.
    prev_after: int | None


def _prefix_range(column: Any, prefix: str) -> ColumnElement[bool]:
    """`column` starts with `prefix`, as an index-friendly range."""
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1) if ord(prefix[-1]) < 0x10FFFF else None
    condition = column >= prefix
    return condition & (column < upper) if upper else condition


def _filtered(query: Select[Any], flt: SubscriberFilter) -> Select[Any]:
    query = query.where(Subscriber.erased_at.is_(None))
    if flt.status in set(SubscriberStatus):
        query = query.where(Subscriber.status == SubscriberStatus(flt.status))
    if flt.language:
        query = query.where(Subscriber.language == flt.language)
    if flt.source in set(SubscriberSource):
        query = query.where(Subscriber.source == SubscriberSource(flt.source))
    term = flt.q.strip()
    if term:
        # Written as "id IN (ids from the email index [UNION ids from the name index])" so
        # the planner starts from the prefix match instead of walking the id order and
        # testing every row, whatever statistics it has.
        matches = select(Subscriber.id).where(_prefix_range(Subscriber.email, term.lower()))
        if "@" not in term:
            by_name = select(Subscriber.id).where(
                _prefix_range(Subscriber.name_key, term.casefold())
            )
            matches = matches.union(by_name)  # type: ignore[assignment]
        query = query.where(Subscriber.id.in_(matches))
    return query


def list_subscribers(
    session: Session,
    flt: SubscriberFilter,
    *,
    before: int | None = None,
    after: int | None = None,
    per_page: int = PER_PAGE,
) -> SubscriberPage:
    """One page of subscribers matching `flt`, newest first.

    `before=N` gives the page of ids just below N (older), `after=N` the page just above
    N (newer); neither gives the first page.
    """
    query = _filtered(select(Subscriber), flt)
    if after is not None:
        rows = list(
            session.scalars(
                query.where(Subscriber.id > after).order_by(Subscriber.id.asc()).limit(per_page + 1)
            )
        )
        has_newer = len(rows) > per_page
        rows = list(reversed(rows[:per_page]))
        has_older = bool(rows) and _exists_below(session, flt, rows[-1].id)
    else:
        if before is not None:
            query = query.where(Subscriber.id < before)
        rows = list(session.scalars(query.order_by(Subscriber.id.desc()).limit(per_page + 1)))
        has_older = len(rows) > per_page
        rows = rows[:per_page]
        has_newer = before is not None and bool(rows) and _exists_above(session, flt, rows[0].id)
    total = count_subscribers(session, flt)
    return SubscriberPage(
        rows=rows,
        total=total,
        next_before=rows[-1].id if has_older and rows else None,
        prev_after=rows[0].id if has_newer and rows else None,
    )


def _exists_below(session: Session, flt: SubscriberFilter, below: int) -> bool:
    query = _filtered(select(Subscriber.id), flt).where(Subscriber.id < below).limit(1)
    return session.scalar(query) is not None


def _exists_above(session: Session, flt: SubscriberFilter, above: int) -> bool:
    query = _filtered(select(Subscriber.id), flt).where(Subscriber.id > above).limit(1)
    return session.scalar(query) is not None


def count_subscribers(session: Session, flt: SubscriberFilter) -> int:
    """How many subscribers match `flt`."""
    query = _filtered(select(func.count()).select_from(Subscriber), flt)
    return int(session.scalar(query) or 0)


def status_counts(session: Session) -> dict[str, int]:
    """Subscribers per status (erased people left out), every status present."""
    counts = {status.value: 0 for status in SubscriberStatus}
    rows = session.execute(
        select(Subscriber.status, func.count())
        .where(Subscriber.erased_at.is_(None))
        .group_by(Subscriber.status)
    )
    for status, count in rows:
        counts[SubscriberStatus(status).value] = int(count)
    return counts


@dataclass(frozen=True)
class HistoryLine:
    """One line of a subscriber's history as the staff page shows it."""

    at: datetime
    kind: str
    actor: str
    detail: dict[str, Any]


def history(session: Session, subscriber: Subscriber) -> list[HistoryLine]:
    """The subscriber's events newest first, details decoded; a subscriber added by a CSV
    import gets its "imported" line from the import job (see `ImportJob`)."""
    events = session.scalars(
        select(SubscriberEvent)
        .where(SubscriberEvent.subscriber_id == subscriber.id)
        .order_by(SubscriberEvent.at.desc(), SubscriberEvent.id.desc())
    )
    lines = []
    for event in events:
        try:
            detail = json.loads(event.detail or "{}")
        except ValueError:
            detail = {}
        lines.append(
            HistoryLine(
                event.at, event.kind, event.actor, detail if isinstance(detail, dict) else {}
            )
        )
    job = subscriber.import_job
    if job is not None:
        imported = HistoryLine(
            job.started_at or job.created_at,
            EventKind.IMPORTED.value,
            EventActor.IMPORT.value,
            {"import": job.id, "format": job.detected_format, "file": job.filename},
        )
        # Oldest last: the import goes after every event that is newer than it.
        position = sum(1 for line in lines if as_utc(line.at) > as_utc(imported.at))
        lines.insert(position, imported)
    return lines


def consent_records(session: Session, subscriber_id: int) -> list[ConsentRecord]:
    """The subscriber's consent records, newest first."""
    return list(
        session.scalars(
            select(ConsentRecord)
            .where(ConsentRecord.subscriber_id == subscriber_id)
            .order_by(ConsentRecord.at.desc(), ConsentRecord.id.desc())
        )
    )
