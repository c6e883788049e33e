"""(v2) Indexes for the work queue's overdue-remedy list (issue 14's latency)

A remedy is overdue two ways: its deadline is unfired and past (migration 0012's partial
index of unfired deadlines finds those), or its deadline fired and the complaint, still with
the Ombudsman, has not implemented it (`remedy_overdue`). The second way had no index: the
list read every complaint with the Ombudsman (2 % of a year's record) and every deadline of
each flagged one, and over 1,000,000 complaints a misestimate planned it as a scan of every
deadline (752 ms for a page).

- complaints (complaint_id) where remedy_overdue and with the Ombudsman: the flagged
  complaints, a few thousand in a million, read from the index alone;
- deadlines (complaint_id, due_at, id) where kind = 'remedy': each one's remedy deadlines,
  with the list's sort key, read from the index alone (a complaint has five or so deadlines;
  the general complaint_id index read them all to keep the remedy).

Both are partial: the writers add an entry only for the rows they hold.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# The predicates as the work queue writes them (the planner proves a query's WHERE implies
# an index's predicate by its form).
REMEDY_OVERDUE = sa.text("remedy_overdue IS true AND state = 'ombudsman'")
REMEDY_DEADLINES = sa.text("kind = 'remedy'")


def upgrade() -> None:
    op.create_index("ix_complaints_remedy_overdue", "complaints", ["complaint_id"],
                    postgresql_where=REMEDY_OVERDUE, sqlite_where=REMEDY_OVERDUE)
    op.create_index("ix_deadlines_remedy", "deadlines", ["complaint_id", "due_at", "id"],
                    postgresql_where=REMEDY_DEADLINES, sqlite_where=REMEDY_DEADLINES)


def downgrade() -> None:
    op.drop_index("ix_deadlines_remedy", table_name="deadlines")
    op.drop_index("ix_complaints_remedy_overdue", table_name="complaints")
