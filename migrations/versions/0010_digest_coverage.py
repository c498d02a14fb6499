"""every article reaches one issue: the articles each approved issue carries

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 11:00:00

Filled from the `items` of the issues already approved, so articles they carried are not
offered as new again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "digest_issue_articles",
        sa.Column("issue_id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("section", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.id"],
            name=op.f("fk_digest_issue_articles_article_id_articles"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["issue_id"],
            ["digest_issues.id"],
            name=op.f("fk_digest_issue_articles_issue_id_digest_issues"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("issue_id", "article_id", name=op.f("pk_digest_issue_articles")),
    )
    op.create_index(
        op.f("ix_digest_issue_articles_article_id"), "digest_issue_articles", ["article_id"]
    )
    connection = op.get_bind()
    issues = sa.table(
        "digest_issues",
        sa.column("id", sa.Integer),
        sa.column("status", sa.String),
        sa.column("items", sa.JSON),
    )
    articles = sa.table("articles", sa.column("id", sa.Integer))
    carried = sa.table(
        "digest_issue_articles",
        sa.column("issue_id", sa.Integer),
        sa.column("article_id", sa.Integer),
        sa.column("section", sa.String),
    )
    existing = set(connection.scalars(sa.select(articles.c.id)))
    rows = []
    for issue_id, items in connection.execute(
        sa.select(issues.c.id, issues.c["items"]).where(
            issues.c.status.in_(["sending", "paused", "sent"])
        )
    ):
        seen = set()
        for item in items or []:
            article_id = int(item["article_id"])
            if article_id in existing and article_id not in seen:
                seen.add(article_id)
                rows.append(
                    {"issue_id": issue_id, "article_id": article_id, "section": item["section"]}
                )
    if rows:
        op.bulk_insert(carried, rows)


def downgrade() -> None:
    op.drop_index(op.f("ix_digest_issue_articles_article_id"), table_name="digest_issue_articles")
    op.drop_table("digest_issue_articles")
