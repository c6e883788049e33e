"""Letter deliveries (docs/rules.md s.6, v2): each letter's delivery state and every attempt

`deliveries` holds one row per letter issued from now on, inserted with the letter;
`dispatches` every attempt (email or post) with the address used, the instant, the outcome and
the mail server's reply or the print file. Letters issued before this revision get no row:
they were delivered, as before, by whoever collected the letter service's folder.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column("letter_id", sa.String(32), primary_key=True),
        sa.Column("complaint_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=False), nullable=False),
        sa.Column("email_since", sa.DateTime(timezone=False), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=False), nullable=False),
        sa.Column("dispatched_at", sa.DateTime(timezone=False), nullable=True),
    )
    op.create_index("ix_deliveries_pending_due", "deliveries", ["next_attempt_at"],
                    postgresql_where=sa.text("status = 'pending'"),
                    sqlite_where=sa.text("status = 'pending'"))
    op.create_table(
        "dispatches",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("letter_id", sa.String(32), nullable=False),
        sa.Column("complaint_id", sa.String(64), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=False), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("receipt", sa.Text(), nullable=False),
    )
    op.create_index("uq_dispatches_letter_attempt", "dispatches", ["letter_id", "attempt"],
                    unique=True)


def downgrade() -> None:
    op.drop_table("dispatches")
    op.drop_table("deliveries")
