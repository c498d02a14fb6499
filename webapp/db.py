"""SQLAlchemy 2.x engine and session setup.

One `Database` per app holds the engine and a session factory. Request code gets its
session from `get_session()` (one per app context, closed at teardown); services take a
`Session` argument and never look it up themselves.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from flask import Flask, current_app, g
from sqlalchemy import Enum, MetaData, String, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

# Stable constraint names so Alembic migrations are the same on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def search_text(length: int) -> String:
    """A text column whose ordering is byte/code-point order on every backend.

    Prefix search is written as a range (`email >= 'ab' AND email < 'ac'`) so a plain
    b-tree index serves it; that range equals "starts with" only under binary ordering,
    which SQLite has by default and PostgreSQL gets from the "C" collation.
    """
    return String(length).with_variant(String(length, collation="C"), "postgresql")


def str_enum(enum_class: type[enum.StrEnum], length: int = 20) -> Enum:
    """A column type storing a `StrEnum` by value."""
    # Stored as the plain value in a VARCHAR (no native enum type: adding a value must
    # not need a PostgreSQL type migration).
    return Enum(
        enum_class,
        native_enum=False,
        create_constraint=False,
        length=length,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    """Declarative base of every model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the web app read while a worker writes; busy_timeout waits instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str) -> Engine:
    """Create an engine with the settings each backend needs."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


class Database:
    """The engine and session factory of one application."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.session_factory = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_postgres(self) -> bool:
        """True when the backend is PostgreSQL (row locks with SKIP LOCKED are available)."""
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session for jobs and scripts: committed by the caller, always closed."""
        session = self.session_factory()
        try:
            yield session
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()


def begin_writing(session: Session) -> None:
    """Start the session's transaction as a writer now, before it reads.

    SQLite gives a transaction the snapshot of its first read; one that read before another
    connection committed cannot write afterwards, and reading first would decide on stale
    rows. `BEGIN IMMEDIATE` takes the write lock (waiting `busy_timeout`) first. PostgreSQL
    needs nothing here: its row locks (`FOR UPDATE`) wait and then read the committed row.
    """
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return
    raw = connection.connection.dbapi_connection
    if raw is not None and not raw.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def locked(session: Session, stmt: Any) -> Any:
    """The one row `stmt` selects (or None), locked and read afresh.

    `FOR UPDATE` on PostgreSQL makes two transactions about one row change it one after
    the other; `populate_existing` replaces whatever this session loaded earlier with the
    row as it is now (without it, a stale "pending" would queue a second receipt). SQLite
    runs one writer at a time: the caller's transaction already writes (`begin_writing`)."""
    return session.scalar(stmt.with_for_update().execution_options(populate_existing=True))


_Row = TypeVar("_Row", bound=Base)


def get_or_create_row(session: Session, model: type[_Row], key: int = 1) -> _Row:
    """The row of `model` whose id is `key`, created with the model's defaults on first use
    (the one-row settings tables). The caller commits.

    Two first requests at once (two gunicorn workers on a fresh database) both find no
    row; the one whose insert loses gets the winner's row instead of an IntegrityError.
    """
    row = session.get(model, key)
    if row is not None:
        return row
    created = model(id=key)
    try:
        # A savepoint, so a lost race rolls back only this insert, not the caller's work.
        with session.begin_nested():
            session.add(created)
    except IntegrityError:
        row = session.get(model, key)
        if row is None:  # pragma: no cover (the winner's row is committed by now)
            raise RuntimeError(f"the {model.__name__} row {key} could not be created") from None
        return row
    # The object just added, not a second look-up: should the caller roll back, it keeps
    # its values (it becomes transient) instead of pointing at a row that never was.
    return created


def init_app(app: Flask) -> None:
    """Attach a `Database` to the app and close request sessions at teardown."""
    app.extensions["database"] = Database(app.config["DATABASE_URL"])

    @app.teardown_appcontext
    def _close_session(_exc: BaseException | None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.close()


def get_database(app: Flask | None = None) -> Database:
    """The current app's `Database`."""
    return (app or current_app).extensions["database"]


def get_session() -> Session:
    """The session of the current app context, created on first use."""
    if "db_session" not in g:
        g.db_session = get_database().session_factory()
    return g.db_session
