"""subscriber imports: the encoding asked for and used, and how many dates were clamped

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 16:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("subscriber_imports") as batch:
        batch.add_column(
            sa.Column(
                "requested_encoding", sa.String(length=40), nullable=False, server_default="auto"
            )
        )
        batch.add_column(sa.Column("encoding", sa.String(length=40), nullable=True))
        batch.add_column(
            sa.Column("dates_clamped", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("subscriber_imports") as batch:
        batch.drop_column("dates_clamped")
        batch.drop_column("encoding")
        batch.drop_column("requested_encoding")
