"""(v2) Indexes for the ops API's work queue reads over a large record (issue 14's latency)

- complaints (state, received_at, complaint_id): the complaints in a stage, oldest first,
  read a page at a time from the index instead of sorting every complaint in the stage
  (740,000 resolved ones in a year of a large supplier).
- deadlines (kind, due_at, complaint_id) where unfired: the complaints with a deadline of a
  kind overdue, earliest due first, a page at a time.
- receipts (received_at, complaint_id): a day's receipts in the list's order.
- PostgreSQL only: upper(complaint_id) and upper(reference) with text_pattern_ops, so the search's
  prefix LIKE is an index range whatever the database's collation (with a non-"C" collation
  a plain btree cannot serve LIKE 'x%'). SQLite's LIKE cannot use such an index either way.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_complaints_state_received", "complaints",
                    ["state", "received_at", "complaint_id"])
    op.create_index("ix_deadlines_unfired_kind_due", "deadlines",
                    ["kind", "due_at", "complaint_id"],
                    postgresql_where=sa.text("fired_at IS NULL"),
                    sqlite_where=sa.text("fired_at IS NULL"))
    op.create_index("ix_receipts_received_complaint", "receipts",
                    ["received_at", "complaint_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE INDEX ix_complaints_id_pattern ON complaints "
                   "(upper(complaint_id) text_pattern_ops)")
        op.execute("CREATE INDEX ix_complaints_reference_pattern ON complaints "
                   "(upper(reference) text_pattern_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_complaints_reference_pattern", table_name="complaints")
        op.drop_index("ix_complaints_id_pattern", table_name="complaints")
    op.drop_index("ix_receipts_received_complaint", table_name="receipts")
    op.drop_index("ix_deadlines_unfired_kind_due", table_name="deadlines")
    op.drop_index("ix_complaints_state_received", table_name="complaints")
