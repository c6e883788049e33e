"""Widen history.event_id and letters.cause to hold a deadline key

A deadline's history entry is "deadline:<complaint_id>/<kind>/<cause>" and a letter issued by a
deadline records that key as its cause: with a 64-character complaint id and a 128-character
event id that is up to 224 characters, over the 200 these columns had (PostgreSQL refused the
row and the whole ingest failed).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("history") as batch_op:
        batch_op.alter_column("event_id", existing_type=sa.String(length=200),
                              type_=sa.String(length=300), existing_nullable=False)
    with op.batch_alter_table("letters") as batch_op:
        batch_op.alter_column("cause", existing_type=sa.String(length=200),
                              type_=sa.String(length=300), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("letters") as batch_op:
        batch_op.alter_column("cause", existing_type=sa.String(length=300),
                              type_=sa.String(length=200), existing_nullable=False)
    with op.batch_alter_table("history") as batch_op:
        batch_op.alter_column("event_id", existing_type=sa.String(length=300),
                              type_=sa.String(length=200), existing_nullable=False)
