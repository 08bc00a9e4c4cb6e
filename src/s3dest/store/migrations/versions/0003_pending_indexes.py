"""PostgreSQL: the state indexes hold only messages not yet delivered

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 17:05:00

Every claim and every recorded outcome changes `state`, so no update of a message is HOT and
each one adds an entry to every index of `messages`. ix_messages_claim and
ix_messages_destination_state serve only queries about pending messages (the reaper, holds,
probes, replays, queue depth and state counts); as partial indexes without delivered
messages, recording a delivery no longer writes to them, and they stay as small as the
backlog instead of growing with the delivery history. SQLite keeps its full indexes (it only
uses a partial index when the query repeats the index's condition).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_PENDING = "state <> 'delivered'"
_INDEXES = {
    "ix_messages_claim": ["state", "next_attempt_at"],
    "ix_messages_destination_state": ["destination_id", "state"],
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, columns in _INDEXES.items():
        op.drop_index(name, table_name="messages")
        op.create_index(name, "messages", columns, postgresql_where=sa.text(_PENDING))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, columns in _INDEXES.items():
        op.drop_index(name, table_name="messages")
        op.create_index(name, "messages", columns)
