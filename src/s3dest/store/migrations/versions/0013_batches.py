"""Batching (SPEC §9): a destination's `batch` settings; a message's batch and line

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 08:00:00

`destinations.batch` holds a destination's batching settings as JSON (NULL: one object per
message). A message of a batching destination waits in state `batching` until the queue
seals a batch (store/queue/batches.py): its first message (the leader) gets `batch_leader` =
its own event id, line 0, and is claimed and delivered like any message, but writes the
whole batch; the others (`batched`) carry the leader's id and their line, and follow the
leader when it is delivered. `ix_messages_batching` finds each destination's unsealed
messages in acceptance order; `ix_messages_batch` a batch's members in line order.
`staged_messages` has every column of `messages` (store/staging.py moves rows by
INSERT … SELECT), so it gets the two columns too.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("destinations", sa.Column("batch", sa.Text(), nullable=True))
    for table in ("messages", "staged_messages"):
        op.add_column(table, sa.Column("batch_leader", sa.String(36), nullable=True))
        op.add_column(table, sa.Column("batch_line", sa.Integer(), nullable=True))
    op.create_index(
        "ix_messages_batching",
        "messages",
        ["destination_id", "event_id"],
        sqlite_where=sa.text("state = 'batching'"),
        postgresql_where=sa.text("state = 'batching'"),
    )
    op.create_index(
        "ix_messages_batch",
        "messages",
        ["batch_leader", "batch_line"],
        sqlite_where=sa.text("batch_leader IS NOT NULL"),
        postgresql_where=sa.text("batch_leader IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_batch", table_name="messages")
    op.drop_index("ix_messages_batching", table_name="messages")
    for table in ("staged_messages", "messages"):
        op.drop_column(table, "batch_line")
        op.drop_column(table, "batch_leader")
    op.drop_column("destinations", "batch")
