"""Finding a person's traces anywhere in the database, for erasure tests of any feature."""

from __future__ import annotations

from sqlalchemy import LargeBinary, String, Text, select
from sqlalchemy.orm import Session

from webapp.db import Base


def traces(session: Session, *needles: str) -> list[str]:
    """Every table.column whose text (or bytes) contains one of `needles`."""
    session.expire_all()
    found = []
    for table in Base.metadata.sorted_tables:
        columns = [c for c in table.columns if isinstance(c.type, String | Text | LargeBinary)]
        if not columns:
            continue
        for row in session.execute(select(*columns)):
            for column, value in zip(columns, row, strict=True):
                if value is None:
                    continue
                text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
                if any(n.lower() in text.lower() for n in needles):
                    found.append(f"{table.name}.{column.name}")
    return found
