"""Shared fixtures: the app on a real database (SQLite, or PostgreSQL when
TEST_DATABASE_URL is set), the Flask client and CLI runner, and a real SMTP sink."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.helpers.live_server import LiveServer
from tests.helpers.smtp import SmtpSink
from tests.helpers.stripe_emulator import StripeEmulator
from webapp import create_app
from webapp.core.clock import FrozenClock
from webapp.core.limits import limiter
from webapp.db import Base, get_database


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The test database with every table, created once per run.

    The schema comes from the models here; `tests/test_migrations.py` proves the Alembic
    migrations build the very same schema.
    """
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
    else:
        _reset_postgres_schema(url)
    from sqlalchemy import create_engine

    import webapp.models  # noqa: F401  (every table on Base.metadata)

    engine = create_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    return url


def _reset_postgres_schema(url: str) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def smtp_sink() -> Iterator[SmtpSink]:
    """A real aiosmtpd server on 127.0.0.1 for the whole run (cleared before each test)."""
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def clock() -> FrozenClock:
    """A clock the test can move; the app uses it."""
    return FrozenClock()


@pytest.fixture
def app_config(
    database_url: str, tmp_path: Path, smtp_sink: SmtpSink, clock: FrozenClock
) -> dict[str, Any]:
    """Configuration overrides for the test app; tests may change it before `app` is built."""
    smtp_sink.clear()
    return {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret-key-that-is-long-enough-for-hmac",
        "BASE_URL": "http://localhost",
        "SMTP_URL": smtp_sink.url,
        "MAIL_FROM": "The Test Review <newsletter@test.example>",
        "MAILBOX_DIR": str(tmp_path / "mailbox"),
        "RATELIMIT_STORAGE_URI": "memory://",
        "CLOCK": clock,
        "SERVER_NAME": "localhost",
        # Cheap argon2id costs keep sign-in tests fast; production uses argon2's defaults.
        "ARGON2_TIME_COST": 1,
        "ARGON2_MEMORY_COST": 8192,
    }


@pytest.fixture
def app(app_config: dict[str, Any]) -> Iterator[Flask]:
    """The application on the migrated test database; every table is emptied afterwards."""
    application = create_app(app_config)
    limiter.reset()
    yield application
    _empty_tables(application)
    get_database(application).engine.dispose()


def _empty_tables(app: Flask) -> None:
    database = get_database(app)
    with database.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client (cookies kept between requests)."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    """The `readership` CLI bound to the test app."""
    return app.test_cli_runner()


@pytest.fixture
def db_session(app: Flask) -> Iterator[Session]:
    """A session on the test database for arranging and checking rows."""
    with get_database(app).session() as session:
        yield session


@pytest.fixture(scope="session")
def stripe_emulator() -> Iterator[StripeEmulator]:
    """The Stripe emulator (localstripe, extended) on 127.0.0.1 for the whole run."""
    emulator = StripeEmulator().start()
    yield emulator
    emulator.stop()


@pytest.fixture
def live_server(app: Flask, app_config: dict[str, Any]) -> Iterator[LiveServer]:
    """The real app served over HTTP on 127.0.0.1 for one test.

    It is a second app built from the same `app_config`, so it shares the database (emptied
    after the test by the `app` fixture), the frozen clock and the SMTP sink; `app` and
    `db_session` can arrange and check rows. `BASE_URL` is the server's origin and
    `SERVER_NAME` is unset, so the browser's Host header is accepted and emailed links work.
    """

    def build(origin: str) -> Flask:
        config = {**app_config, "BASE_URL": origin}
        config.pop("SERVER_NAME", None)
        live_app = create_app(config)
        live_app.config["SERVER_NAME"] = None
        return live_app

    server = LiveServer.start(build)
    limiter.reset()
    try:
        yield server
    finally:
        server.stop()
        # Each test builds its own app: close its pool so no connection outlives the test.
        get_database(server.app).engine.dispose()
