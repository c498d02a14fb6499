"""what relays report after sending: bounces, complaints, deliveries

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08 00:40:00

`email_events`: one row per event a relay reported (unique per provider and event key, so
retries are recognised), with the subscriber it was about but never the address, and the
digest delivery and issue its Message-ID names.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "email_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("provider", sa.String(20), nullable=False),
        sa.Column("event_key", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.String(300), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.Column("issue_id", sa.Integer(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.UniqueConstraint("provider", "event_key", name="uq_email_events_key"),
    )
    op.create_index("ix_email_events_subscriber_id", "email_events", ["subscriber_id"])
    op.create_index("ix_email_events_issue_id", "email_events", ["issue_id"])


def downgrade() -> None:
    op.drop_index("ix_email_events_issue_id", table_name="email_events")
    op.drop_index("ix_email_events_subscriber_id", table_name="email_events")
    op.drop_table("email_events")
