"""Every applied event's raw bytes with a global sequence (raw_events)

`complaints export-events` and `complaints simulate` replay what the record applied: the
history keeps a normalised copy of complaint events only, without the bytes, without
`contact.received` and `accounts.snapshot`, and without one global order. Records applied
before this revision have no rows here (export says so).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import workflow.schema

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "raw_events",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("complaint_id", sa.String(length=64), nullable=True),
        sa.Column("occurred_at", workflow.schema.UTCDateTime(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("position", sa.String(length=64), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("applied_at", workflow.schema.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("raw_events") as batch_op:
        batch_op.create_index(batch_op.f("ix_raw_events_complaint_id"), ["complaint_id"])


def downgrade() -> None:
    with op.batch_alter_table("raw_events") as batch_op:
        batch_op.drop_index(batch_op.f("ix_raw_events_complaint_id"))
    op.drop_table("raw_events")
