"""Deliveries at scale and idempotent ingest

Revision ID: 0007
Revises: 0008
Create Date: 2026-12-01 19:40:00

Issue 15 (items 6 and 11):
- `messages.installation_id`, so deliveries can be searched by installation (rows stored
  before this revision have NULL: they are found by every other filter);
- `ix_messages_project_event (project_id, event_id)`: the deliveries list pages newest
  first by event id (a UUIDv7, ordered by acceptance and never changed) with a keyset
  cursor, so a page is an index range whatever the project's size, and inserts never
  shift a page already read;
- `idempotency_keys`: a request's `Idempotency-Key` per project, the SHA-256 of its body
  and the 202 it was answered with, so a repeat returns the same event ids.

`ADD COLUMN` (not a batch table copy): on SQLite a copy of a large queue would take as long
as the queue is big.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0008"  # 0009 and 0008 landed first: 0005 → 0009 → 0008 → 0007
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("installation_id", sa.String(length=256), nullable=True))
    op.create_index("ix_messages_project_event", "messages", ["project_id", "event_id"])
    op.create_table(
        "idempotency_keys",
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_sha256", sa.String(length=64), nullable=False),
        sa.Column("response", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("project_id", "key"),
    )
    op.create_index("ix_idempotency_keys_created", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_index("ix_messages_project_event", table_name="messages")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("installation_id")
