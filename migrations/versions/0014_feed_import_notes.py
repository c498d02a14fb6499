"""a feed says what its last import skipped and why

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 16:20:00

`feeds.last_import_notes`: counts by reason ("no_link": 2, "undated": 1, ...) of the
entries the last import skipped or kept without a date, shown on the staff feeds page.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("feeds") as batch:
        batch.add_column(
            sa.Column("last_import_notes", sa.JSON(), server_default="{}", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("feeds") as batch:
        batch.drop_column("last_import_notes")
