"""(v2) The work queue's deadline and receipt lists read from their indexes alone (issue 14)

A list of overdue deadlines or of a day's receipts is ordered by (instant, complaint_id, id),
and migration 0012's indexes held only (instant, complaint_id): PostgreSQL read every row
before the page from the table for its id and sorted each group of equal keys by it
(`Incremental Sort` over an `Index Scan`). A day's page at offset 1,000 over 1,000,000
complaints read 1,052 table rows for it (10.4 of its 17.6 ms in EXPLAIN ANALYZE).

- deadlines (kind, due_at, complaint_id) where unfired -> (kind, due_at, complaint_id, id);
- receipts (received_at, complaint_id) -> (received_at, complaint_id, id).

Each replaces the index it extends (the same leading columns serve the same reads: the
backlog's counts, the day's totals), so the writers keep as many index entries per row.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

UNFIRED = sa.text("fired_at IS NULL")


def upgrade() -> None:
    op.create_index("ix_deadlines_unfired_kind_due_id", "deadlines",
                    ["kind", "due_at", "complaint_id", "id"],
                    postgresql_where=UNFIRED, sqlite_where=UNFIRED)
    op.drop_index("ix_deadlines_unfired_kind_due", table_name="deadlines")
    op.create_index("ix_receipts_received_complaint_id", "receipts",
                    ["received_at", "complaint_id", "id"])
    op.drop_index("ix_receipts_received_complaint", table_name="receipts")


def downgrade() -> None:
    op.create_index("ix_receipts_received_complaint", "receipts",
                    ["received_at", "complaint_id"])
    op.drop_index("ix_receipts_received_complaint_id", table_name="receipts")
    op.create_index("ix_deadlines_unfired_kind_due", "deadlines",
                    ["kind", "due_at", "complaint_id"],
                    postgresql_where=UNFIRED, sqlite_where=UNFIRED)
    op.drop_index("ix_deadlines_unfired_kind_due_id", table_name="deadlines")
