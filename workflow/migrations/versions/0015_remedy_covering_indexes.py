"""(v2) The overdue-remedy lists read from their indexes alone (issue 14)

A remedy whose deadline fired is overdue while its complaint, still with the Ombudsman, has not
implemented it (`remedy_overdue`), and the list takes the latest decision's deadline only
(`deadlines.cause = complaints.remedy_decision_event_id`). Migration 0013's indexes held
neither column of that comparison: over 1,000,000 complaints (3,880 flagged) a page read
each flagged complaint's row from the table for its decision and each of their remedy
deadlines' rows for its cause, 7,700 table rows (EXPLAIN (ANALYZE, BUFFERS): 15,000
buffers) for every page and its total.

- complaints (complaint_id) where flagged -> (complaint_id, remedy_decision_event_id);
- deadlines (complaint_id, due_at, id) where kind = 'remedy' -> (complaint_id, cause,
  due_at, id).

Each replaces the index it extends (the same leading column serves the same reads: the
backlog's count of overdue remedies, the lists behind the overdue count), so the writers
keep as many index entries per row; both stay partial.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

REMEDY_OVERDUE = sa.text("remedy_overdue IS true AND state = 'ombudsman'")
REMEDY_DEADLINES = sa.text("kind = 'remedy'")


def upgrade() -> None:
    op.create_index("ix_complaints_remedy_overdue_decision", "complaints",
                    ["complaint_id", "remedy_decision_event_id"],
                    postgresql_where=REMEDY_OVERDUE, sqlite_where=REMEDY_OVERDUE)
    op.drop_index("ix_complaints_remedy_overdue", table_name="complaints")
    op.create_index("ix_deadlines_remedy_cause", "deadlines",
                    ["complaint_id", "cause", "due_at", "id"],
                    postgresql_where=REMEDY_DEADLINES, sqlite_where=REMEDY_DEADLINES)
    op.drop_index("ix_deadlines_remedy", table_name="deadlines")


def downgrade() -> None:
    op.create_index("ix_deadlines_remedy", "deadlines", ["complaint_id", "due_at", "id"],
                    postgresql_where=REMEDY_DEADLINES, sqlite_where=REMEDY_DEADLINES)
    op.drop_index("ix_deadlines_remedy_cause", table_name="deadlines")
    op.create_index("ix_complaints_remedy_overdue", "complaints", ["complaint_id"],
                    postgresql_where=REMEDY_OVERDUE, sqlite_where=REMEDY_OVERDUE)
    op.drop_index("ix_complaints_remedy_overdue_decision", table_name="complaints")
