"""clicks without tracking people: a count per (issue, link), and languages with plain links

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-08 00:45:00

`digest_link_clicks`: one row per link of an issue followed through the signed `/r/`
redirect, with a counter and nothing about the reader. `digest_settings.plain_link_languages`:
the languages whose issues link straight to the articles (none at first: every language
counts).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("digest_settings") as batch:
        batch.add_column(
            sa.Column("plain_link_languages", sa.JSON(), server_default="[]", nullable=False)
        )
    op.create_table(
        "digest_link_clicks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issue_id", sa.Integer(), nullable=False),
        sa.Column("url_hash", sa.String(length=64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("first_clicked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_clicked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["issue_id"],
            ["digest_issues.id"],
            name=op.f("fk_digest_link_clicks_issue_id_digest_issues"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_digest_link_clicks")),
        sa.UniqueConstraint("issue_id", "url_hash", name="uq_digest_link_clicks_issue_url"),
    )


def downgrade() -> None:
    op.drop_table("digest_link_clicks")
    with op.batch_alter_table("digest_settings") as batch:
        batch.drop_column("plain_link_languages")
