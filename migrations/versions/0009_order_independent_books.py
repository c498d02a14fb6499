"""order-independent books: parked Stripe events, disputes, receipt numbers, plan terms time

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 03:10:00

Columns are added with plain ALTER TABLE (no table rebuild), so the report triggers on
`donations` and `plans` stay in place on SQLite.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "stripe_events",
        sa.Column("parked", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("stripe_events", sa.Column("payload", sa.JSON(), nullable=True))
    op.create_index(op.f("ix_stripe_events_parked"), "stripe_events", ["parked"])
    op.create_table(
        "stripe_event_waits",
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["stripe_events.id"],
            name=op.f("fk_stripe_event_waits_event_id_stripe_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_id", "key", name=op.f("pk_stripe_event_waits")),
    )
    op.create_index(op.f("ix_stripe_event_waits_key"), "stripe_event_waits", ["key"])
    op.create_table(
        "disputes",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("donation_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("amount_minor", sa.Integer(), nullable=False),
        sa.Column("state_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["donation_id"],
            ["donations.id"],
            name=op.f("fk_disputes_donation_id_donations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_disputes")),
    )
    op.create_index(op.f("ix_disputes_donation_id"), "disputes", ["donation_id"])
    op.create_table(
        "receipt_counters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_receipt_counters")),
    )
    op.create_table(
        "plan_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("amount_minor", sa.Integer(), nullable=True),
        sa.Column("request_key", sa.String(length=64), nullable=False),
        sa.Column("stripe_key", sa.String(length=64), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["plans.id"],
            name=op.f("fk_plan_changes_plan_id_plans"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_changes")),
        sa.UniqueConstraint("request_key", name=op.f("uq_plan_changes_request_key")),
    )
    op.create_index(op.f("ix_plan_changes_plan_id"), "plan_changes", ["plan_id"])
    op.add_column(
        "donors", sa.Column("statement_sent_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("donations", sa.Column("receipt_seq", sa.Integer(), nullable=True))
    op.add_column("plans", sa.Column("terms_at", sa.DateTime(timezone=True), nullable=True))
    # Paid gifts keep the numbers their receipts already carry (R-<id>); the counter goes
    # on from the highest of them.
    op.execute("UPDATE donations SET receipt_seq = id WHERE status = 'paid'")
    op.execute(
        "INSERT INTO receipt_counters (id, last) "
        "SELECT 1, COALESCE(MAX(receipt_seq), 0) FROM donations"
    )
    op.create_index("ix_donations_receipt_seq", "donations", ["receipt_seq"], unique=True)
    # Disputes recorded before this version: one row each, from the amount held.
    op.execute(
        "INSERT INTO disputes (id, donation_id, status, amount_minor, state_at) "
        "SELECT 'dp_migrated_' || id, id, 'needs_response', disputed_minor, "
        "COALESCE(updated_at, created_at) FROM donations WHERE disputed_minor > 0"
    )


def downgrade() -> None:
    op.drop_index("ix_donations_receipt_seq", table_name="donations")
    with op.batch_alter_table("plans") as batch:
        batch.drop_column("terms_at")
    with op.batch_alter_table("donations") as batch:
        batch.drop_column("receipt_seq")
    op.drop_table("receipt_counters")
    with op.batch_alter_table("donors") as batch:
        batch.drop_column("statement_sent_at")
    op.drop_index(op.f("ix_plan_changes_plan_id"), table_name="plan_changes")
    op.drop_table("plan_changes")
    op.drop_index(op.f("ix_disputes_donation_id"), table_name="disputes")
    op.drop_table("disputes")
    op.drop_index(op.f("ix_stripe_event_waits_key"), table_name="stripe_event_waits")
    op.drop_table("stripe_event_waits")
    op.drop_index(op.f("ix_stripe_events_parked"), table_name="stripe_events")
    with op.batch_alter_table("stripe_events") as batch:
        batch.drop_column("payload")
        batch.drop_column("parked")
