"""Indexes for the returns over a large record (issue #12's timing targets)

Three replace an index of the same leading column (the writers keep as many index entries per
row); two are new (a receipt with a contact id, and a category change, write one more):

- receipts (received_at) -> (received_at, channel, contact_id, is_reopen, id): B7-B10, A1/A4,
  the lone-receipt contacts and the window's side of the shared ones read the index alone;
- new: receipts (contact_id, received_at, id) where contact_id is set: whether a receipt is
  the first of its contact (quarterly A2-A5) is an index lookup;
- resolutions (resolved_at) -> (resolved_at, counted, original_received_at,
  original_d1_deadline, eight_weeks_at): C11-C15 read the index alone;
- contacts (occurred_at) -> (occurred_at, kind, party, channel): A2-A5's contacts rows;
- new: category_changes (effective_at): the record's latest instant (every default as-of)
  was a scan of every category change.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

SET_CONTACT = sa.text("contact_id IS NOT NULL")


def upgrade() -> None:
    op.create_index("ix_receipts_received_at_cover", "receipts",
                    ["received_at", "channel", "contact_id", "is_reopen", "id"])
    op.drop_index("ix_receipts_received_at", table_name="receipts")
    op.create_index("ix_receipts_contact_id", "receipts", ["contact_id", "received_at", "id"],
                    postgresql_where=SET_CONTACT, sqlite_where=SET_CONTACT)
    op.create_index("ix_resolutions_resolved_at_cover", "resolutions",
                    ["resolved_at", "counted", "original_received_at", "original_d1_deadline",
                     "eight_weeks_at"])
    op.drop_index("ix_resolutions_resolved_at", table_name="resolutions")
    op.create_index("ix_contacts_occurred_at_cover", "contacts",
                    ["occurred_at", "kind", "party", "channel"])
    op.drop_index("ix_contacts_occurred_at", table_name="contacts")
    op.create_index("ix_category_changes_effective_at", "category_changes", ["effective_at"])


def downgrade() -> None:
    op.drop_index("ix_category_changes_effective_at", table_name="category_changes")
    op.create_index("ix_contacts_occurred_at", "contacts", ["occurred_at"])
    op.drop_index("ix_contacts_occurred_at_cover", table_name="contacts")
    op.create_index("ix_resolutions_resolved_at", "resolutions", ["resolved_at"])
    op.drop_index("ix_resolutions_resolved_at_cover", table_name="resolutions")
    op.drop_index("ix_receipts_contact_id", table_name="receipts")
    op.create_index("ix_receipts_received_at", "receipts", ["received_at"])
    op.drop_index("ix_receipts_received_at_cover", table_name="receipts")
