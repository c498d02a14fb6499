"""PostgreSQL helpers for tests that need a database of their own next to the suite's."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


@contextmanager
def scratch_database(server_url: str, prefix: str = "scratch") -> Iterator[str]:
    """Create an empty database on the server of `server_url`; yield its URL; drop it after.

    The suite's own database (the one in `server_url`) is left untouched. The connecting
    role needs CREATEDB (the CI cluster connects as the `postgres` superuser).
    """
    url = make_url(server_url)
    name = f"{url.database or 'readership'}_{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
