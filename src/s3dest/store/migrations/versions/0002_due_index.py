"""partial index for claiming due messages

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 14:32:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_DUE = "state IN ('queued', 'retrying')"


def upgrade() -> None:
    op.create_index(
        "ix_messages_due",
        "messages",
        ["next_attempt_at"],
        unique=False,
        sqlite_where=sa.text(_DUE),
        postgresql_where=sa.text(_DUE),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_due", table_name="messages")
