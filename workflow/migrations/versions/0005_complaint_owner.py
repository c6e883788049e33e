"""The complaint's owner: the person every letter names and is signed by (rules revision 2)

docs/rules.md s.6 (v2): the owner is the latest of `complaint.received.handler`,
`complaint.assigned.handler` and `complaint.senior_manager_response.manager`. The record kept
the handler and the senior manager apart, which cannot tell which came last; the new column is
filled from each complaint's history, in applied order.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
# The roles workflow.letter_context.owner_from gives (kept here: a migration is frozen).
HANDLER, SENIOR_MANAGER = "Complaint handler", "Senior manager"
OWNER_EVENTS = ("complaint.received", "complaint.assigned", "complaint.senior_manager_response")


def _owner(entry_type: str, state: str, detail: Any) -> dict[str, Any] | None:
    if isinstance(detail, str):  # JSON read back as text by some drivers
        detail = json.loads(detail)
    person = detail.get("manager" if entry_type.endswith("senior_manager_response")
                        else "handler")
    if not person:
        return None
    role = SENIOR_MANAGER if (entry_type.endswith("senior_manager_response")
                              or state == "senior_manager") else HANDLER
    return {"id": person.get("id"), "name": person.get("name"), "role": role}


def upgrade() -> None:
    # Plain ALTER TABLE on both backends: a batch (copy-and-move) of `complaints` on SQLite
    # would trip the foreign keys that refer to it.
    op.add_column("complaints", sa.Column("owner", JSON_TYPE, nullable=True))
    history = sa.table("history", sa.column("id"), sa.column("complaint_id"),
                       sa.column("type"), sa.column("to_state"), sa.column("detail", JSON_TYPE))
    complaints = sa.table("complaints", sa.column("complaint_id"),
                          sa.column("owner", JSON_TYPE))
    connection = op.get_bind()
    owners: dict[str, dict[str, Any]] = {}
    rows = connection.execute(
        sa.select(history.c.complaint_id, history.c.type, history.c.to_state,
                  history.c.detail)
        .where(history.c.type.in_(OWNER_EVENTS))
        .order_by(history.c.id))
    for complaint_id, entry_type, state, detail in rows:
        owner = _owner(entry_type, state, detail)
        if owner is not None:
            owners[complaint_id] = owner
    if owners:
        connection.execute(
            complaints.update()
            .where(complaints.c.complaint_id == sa.bindparam("key"))
            .values(owner=sa.bindparam("value", type_=JSON_TYPE)),
            [{"key": key, "value": value} for key, value in owners.items()])


def downgrade() -> None:
    op.drop_column("complaints", "owner")  # SQLite 3.35+ drops a column in place
