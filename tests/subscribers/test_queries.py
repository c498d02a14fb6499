"""The staff list's queries are answered from indexes (what keeps them fast at 100k rows).

The plans are read on SQLite with EXPLAIN QUERY PLAN while the real `list_subscribers`
runs; PostgreSQL picks plans from statistics, so there the test only checks the results.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, func, insert, select
from sqlalchemy.orm import Session

from webapp.db import get_database
from webapp.subscribers import queries
from webapp.subscribers.models import Subscriber


@contextmanager
def captured_selects(app: Flask) -> Iterator[list[tuple[str, Any]]]:
    engine = get_database(app).engine
    seen: list[tuple[str, Any]] = []

    def listen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM subscribers" in statement:
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", listen)


@pytest.fixture
def many(db_session: Session) -> int:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    rows = [
        {
            "email": f"user{i:05d}@example.com",
            "name": f"Name {i}",
            "name_key": f"name {i}",
            "language": "ru" if i % 3 else "en",
            "digest_languages": ",en,",
            "status": ["confirmed", "pending", "unsubscribed", "bounced"][i % 4],
            "source": ["signup_page", "embed", "import"][i % 3],
            "created_at": start + timedelta(minutes=i),
            "paused": False,
            "suppressed": False,
            "soft_bounce_count": 0,
        }
        for i in range(3000)
    ]
    db_session.execute(insert(Subscriber), rows)
    db_session.commit()
    return len(rows)


FILTERS = {
    "status": (queries.SubscriberFilter(status="pending"), "ix_subscribers_status_"),
    "language": (queries.SubscriberFilter(language="en"), "ix_subscribers_language_id"),
    "source": (queries.SubscriberFilter(source="embed"), "ix_subscribers_source_id"),
    "email": (queries.SubscriberFilter(q="user0012"), "email"),
    "name": (queries.SubscriberFilter(q="name 12"), "ix_subscribers_name_key"),
}


@pytest.mark.parametrize("name", list(FILTERS))
def test_list_queries_use_indexes(app: Flask, db_session: Session, many: int, name: str) -> None:
    flt, index = FILTERS[name]
    # Ids do not restart at 1 on PostgreSQL (sequences): page from near the newest row.
    before = int(db_session.scalar(select(func.max(Subscriber.id)))) - 500
    with captured_selects(app) as seen:
        page = queries.list_subscribers(db_session, flt, before=before)
    assert page.rows and page.total > 0
    assert [s.id for s in page.rows] == sorted((s.id for s in page.rows), reverse=True)
    if db_session.bind.dialect.name != "sqlite":
        return
    for statement, parameters in seen:
        plan = _plan(db_session, statement, parameters)
        assert "SCAN subscribers" not in plan or "USING" in plan, plan
        assert index in plan, plan
        if name in {"status", "language", "source"}:
            # The (filter, id) index hands rows over in id order: no sort of the matches.
            assert "TEMP B-TREE FOR ORDER BY" not in plan, plan


def _plan(session: Session, statement: str, parameters: Any) -> str:
    connection = session.connection().connection.driver_connection
    cursor = connection.execute("EXPLAIN QUERY PLAN " + statement, parameters)
    return " | ".join(str(row[-1]) for row in cursor.fetchall())


def test_first_page_without_filters_reads_the_newest_rows_in_order(
    app: Flask, db_session: Session, many: int
) -> None:
    with captured_selects(app) as seen:
        page = queries.list_subscribers(db_session, queries.SubscriberFilter())
    assert page.total == many and len(page.rows) == queries.PER_PAGE
    assert page.rows[0].email == "user02999@example.com"
    if db_session.bind.dialect.name == "sqlite":
        listing = _plan(db_session, *seen[0])
        assert "TEMP B-TREE" not in listing, listing  # no sort of the whole table


def test_counts_by_status(db_session: Session, many: int) -> None:
    assert queries.status_counts(db_session) == {
        "pending": 750,
        "confirmed": 750,
        "unsubscribed": 750,
        "bounced": 750,
    }
