"""views one client cannot pump: no schema change

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 11:00:00

Reserved for the work of issue 12, which then needed no new column (sign-in attempts and
view slots use existing tables). Kept, empty, because databases upgraded since already
record this revision.
"""

from collections.abc import Sequence

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
