"""(v2) How a complaint was closed, and whether its latest referral was late

docs/rules.md s.4 (revision 2): a complaint closed by `complaint.withdrawn` or by its referral
window lapsing, after an 8-week or deadlock letter, can still be referred to the Ombudsman;
one closed by the Ombudsman's decision cannot. `closed_by` keeps what moved it to `closed`
(the history entry's type); complaints already closed take it from their history.
`late_referral` marks a referral made at or after the end of the latest such letter's
referral window.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


# Plain ALTER TABLE ADD/DROP COLUMN, not a batch: on SQLite a batch copies the table and drops
# the old one, which the foreign keys into `complaints` refuse once it holds data.


def upgrade() -> None:
    op.add_column("complaints", sa.Column("closed_by", sa.String(length=64), nullable=True))
    op.add_column("complaints", sa.Column("late_referral", sa.Boolean(), nullable=False,
                                          server_default=sa.false()))
    # The latest transition into `closed` says how each closed complaint was closed.
    op.execute(
        "UPDATE complaints SET closed_by = ("
        " SELECT h.type FROM history h"
        " WHERE h.complaint_id = complaints.complaint_id AND h.to_state = 'closed'"
        " AND (h.from_state IS NULL OR h.from_state <> 'closed')"
        " ORDER BY h.id DESC LIMIT 1"
        ") WHERE state = 'closed'"
    )


def downgrade() -> None:
    op.drop_column("complaints", "late_referral")
    op.drop_column("complaints", "closed_by")
