"""(v2) Submissions: returns as submitted and quarters' figures as published, kept for good

docs/rules.md s.7 "Submissions": each is frozen with its as-of instant, its instant, who made it,
the SHA-256 of its canonical JSON, and the CSV and workbook bytes exactly as submitted. They
are never updated or deleted: triggers refuse both, on SQLite and PostgreSQL.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import workflow.schema

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

REFUSAL = "submissions are kept for good: never updated or deleted"


def upgrade() -> None:
    op.create_table(
        "submissions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("as_of", workflow.schema.UTCDateTime(), nullable=False),
        sa.Column("submitted_at", workflow.schema.UTCDateTime(), nullable=False),
        sa.Column("submitted_by", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("csv", sa.LargeBinary(), nullable=False),
        sa.Column("xlsx", sa.LargeBinary(), nullable=False),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("watermarks", workflow.schema.Json, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ux_submissions_kind_period_sequence", "submissions",
                    ["kind", "period", "sequence"], unique=True)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE FUNCTION submissions_kept_for_good() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION '{REFUSAL}'; END; $$ LANGUAGE plpgsql""")
        op.execute("""
            CREATE TRIGGER submissions_kept_for_good BEFORE UPDATE OR DELETE ON submissions
            FOR EACH ROW EXECUTE FUNCTION submissions_kept_for_good()""")
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(f"""
                CREATE TRIGGER submissions_no_{action.lower()} BEFORE {action} ON submissions
                BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END""")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER submissions_kept_for_good ON submissions")
        op.execute("DROP FUNCTION submissions_kept_for_good()")
    op.drop_index("ux_submissions_kind_period_sequence", table_name="submissions")
    op.drop_table("submissions")
