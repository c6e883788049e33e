"""Free-form ids without a length limit: contact_id, ombudsman_ref, a rejection's event_id

The contract gives `contact_id` and `ombudsman_ref` as strings of any length, and a rejected
message's `event_id` is stored as received (a too-long one is why it was rejected). With 128-
and 200-character columns PostgreSQL refused such rows and stopped the batch.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COLUMNS = (
    ("complaints", "contact_id", 128),
    ("complaints", "ombudsman_ref", 128),
    ("receipts", "contact_id", 128),
    ("contacts", "contact_id", 128),
    ("rejections", "event_id", 200),
)


def upgrade() -> None:
    for table, column, length in COLUMNS:
        with op.batch_alter_table(table) as batch_op:
            batch_op.alter_column(column, existing_type=sa.String(length=length),
                                  type_=sa.Text(), existing_nullable=True)


def downgrade() -> None:
    for table, column, length in reversed(COLUMNS):
        with op.batch_alter_table(table) as batch_op:
            batch_op.alter_column(column, existing_type=sa.Text(),
                                  type_=sa.String(length=length), existing_nullable=True)
