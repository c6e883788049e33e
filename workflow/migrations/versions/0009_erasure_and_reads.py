"""Erasure of personal data (recorded without the data) and reads of it on the ops API

`erasures`: who erased which complaints when (the account by its pseudonym), and the reason
when a legal hold was overridden; `erased_complaints`: which complaints are erased;
`personal_data_reads`: every ops-API read of one complaint's personal data. An index on the
account id inside `complaints.customer` finds an account's complaints, and a partial index on
the outbox's key the outbox rows that can quote them (not the lifecycle messages).

Revision ID: 0009
Revises: 0005, 0006, 0008 (0004 on its own; re-chained by the lead on merge)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from workflow.schema import Id, Json, UTCDateTime, account_id_of

revision = "0009"
# 0004 on its own; here the merge point of the branches merged in (complaint owner 0005,
# deliveries 0006, raw_events 0008). The lead re-chains on merge.
down_revision = ("0005", "0006", "0008")
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erasures",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("erased_at", UTCDateTime(), nullable=False),
        sa.Column("by", sa.Text(), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("pseudonym", sa.String(64), nullable=False),
        sa.Column("complaint_ids", Json, nullable=False),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("held", Json, nullable=False),
    )
    op.create_table(
        "erased_complaints",
        sa.Column("complaint_id", sa.String(64), primary_key=True),
        sa.Column("erasure_id", Id, sa.ForeignKey("erasures.id"), nullable=False),
        sa.Column("erased_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_erased_complaints_erasure_id", "erased_complaints", ["erasure_id"])
    op.create_table(
        "personal_data_reads",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("read_at", UTCDateTime(), nullable=False),
        sa.Column("reader", sa.String(64), nullable=False),
        sa.Column("complaint_id", sa.String(64), nullable=False),
        sa.Column("what", sa.String(32), nullable=False),
    )
    op.create_index("ix_personal_data_reads_complaint_id", "personal_data_reads",
                    ["complaint_id"])
    op.create_index("ix_outbox_personal_key", "outbox", ["key"],
                    postgresql_where=sa.text("topic <> 'lifecycle'"),
                    sqlite_where=sa.text("topic <> 'lifecycle'"))
    op.create_index("ix_outbox_rejected", "outbox", ["id"],
                    postgresql_where=sa.text("topic = 'rejected'"),
                    sqlite_where=sa.text("topic = 'rejected'"))
    complaints = sa.table("complaints", sa.column("customer", Json))
    op.create_index("ix_complaints_account_id", "complaints",
                    [account_id_of(complaints.c.customer)])


def downgrade() -> None:
    op.drop_index("ix_complaints_account_id", table_name="complaints")
    op.drop_index("ix_outbox_personal_key", table_name="outbox")
    op.drop_index("ix_outbox_rejected", table_name="outbox")
    op.drop_table("personal_data_reads")
    op.drop_table("erased_complaints")
    op.drop_table("erasures")
