"""The Alembic migrations build exactly the schema the models describe, and undo it.

Runs on a fresh SQLite file, and on a scratch PostgreSQL database when TEST_DATABASE_URL
points at a server (the suite's own database is left alone).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

import webapp.models  # noqa: F401  (every table on Base.metadata)
from tests.helpers.postgres import scratch_database
from webapp.cli import alembic_config, upgrade_database
from webapp.db import Base, make_engine

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no tables at all, on each backend the run has."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.sqlite3'}"
        return
    server_url = os.environ.get("TEST_DATABASE_URL", "")
    if not server_url.startswith("postgresql"):
        pytest.skip("PostgreSQL runs only when TEST_DATABASE_URL points at a server (CI does)")
    with scratch_database(server_url, prefix="migrations") as url:
        yield url


def _differences(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "render_as_batch": True}
            )
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def _describe(differences: list[object]) -> str:
    return "migrations and models differ:\n" + "\n".join(f"  {d!r}"[:300] for d in differences)


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_there_is_a_migration_to_run() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert script.get_heads(), (
        "migrations/versions has no revision: generate one from the models "
        "(alembic revision --autogenerate) before `readership db upgrade` can build a database"
    )
    assert len(script.get_heads()) == 1, f"several heads, merge them: {script.get_heads()}"


def test_upgrade_to_head_matches_the_models_and_downgrade_removes_everything(
    empty_database_url: str,
) -> None:
    upgrade_database(empty_database_url)

    differences = _differences(empty_database_url)
    assert differences == [], _describe(differences)
    model_tables = set(Base.metadata.tables)
    assert model_tables <= _tables(empty_database_url)

    command.downgrade(alembic_config(empty_database_url), "base")

    assert _tables(empty_database_url) <= {"alembic_version"}

    # And back up again: the downgrade left nothing behind that blocks a re-run.
    upgrade_database(empty_database_url)
    differences = _differences(empty_database_url)
    assert differences == [], _describe(differences)
