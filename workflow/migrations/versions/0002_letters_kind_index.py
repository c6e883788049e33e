"""Index letters by kind and issue instant (D16/D17 of the quarterly return)

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_letters_kind_issued_at", "letters", ["kind", "issued_at"])


def downgrade() -> None:
    op.drop_index("ix_letters_kind_issued_at", table_name="letters")
