"""The due-by-project index on PostgreSQL too

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 03:00:00

Revision 0011 created `ix_messages_due_project` on SQLite only. PostgreSQL's claim that
passes over projects at their in-flight bound walked every due message of those projects
first, as SQLite's did (with one project at its bound, its whole backlog on every claim);
it now uses the same skip scan (store/queue/_postgres.py), which needs the index.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ix_messages_due_project",
            "messages",
            ["project_id", "next_attempt_at"],
            postgresql_where=sa.text("state IN ('queued', 'retrying')"),
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_messages_due_project", table_name="messages")
