"""Big batches staged on SQLite: ingest_batches, staged_messages; a claim index per project

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 02:00:00

Issue 13 (SPEC §7 "Fair share"): on SQLite one 10,000-message batch held the single write
lock for its whole insert, and every other project's write waited for it. A batch larger
than one short transaction is now staged in `staged_messages` under an `ingest_batches`
row, committed by a one-row update, and moved into `messages` a few hundred rows at a time
(store/staging.py). The tables exist on PostgreSQL too (one schema), where they stay empty.
`staged_messages` has every column of `messages` (tests/unit/test_staging.py checks it).

Also on SQLite: `ix_messages_due_project`, due messages by project. A claim that passes
over projects at their in-flight bound walked every due message of those projects first
(50 ms of CPU per claim, the write lock held, with 100,000 of one project's due).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_batches",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("project_id", sa.String(36), nullable=False),
        sa.Column("staged_at", sa.Float(), nullable=False),
        sa.Column("committed_at", sa.Float(), nullable=True),
        sa.Column("event_id", sa.String(36), nullable=True),
    )
    op.create_table(
        "staged_messages",
        sa.Column("batch_id", sa.String(36), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("project_id", sa.String(36), nullable=False),
        sa.Column("destination_id", sa.String(36), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("event_time_ns", sa.BigInteger(), nullable=False),
        sa.Column("accepted_at", sa.Float(), nullable=False),
        sa.Column("connection_id", sa.String(256), nullable=False),
        sa.Column("topic", sa.String(256), nullable=False),
        sa.Column("object_name", sa.String(256), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("body_size", sa.BigInteger(), nullable=False),
        sa.Column("chunked", sa.Boolean(), nullable=False),
        sa.Column("envelope", sa.LargeBinary(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_expires_at", sa.Float(), nullable=True),
        sa.Column("bucket", sa.String(63), nullable=True),
        sa.Column("object_key", sa.Text(), nullable=True),
        sa.Column("etag", sa.String(128), nullable=True),
        sa.Column("version_id", sa.String(256), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_kind", sa.String(16), nullable=True),
        sa.Column("delivered_at", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("installation_id", sa.String(256), nullable=True),
    )

    if op.get_bind().dialect.name == "sqlite":
        # The claim that passes over projects at their bound (store/queue/_sqlite.py).
        op.create_index(
            "ix_messages_due_project",
            "messages",
            ["project_id", "next_attempt_at"],
            sqlite_where=sa.text("state IN ('queued', 'retrying')"),
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.drop_index("ix_messages_due_project", table_name="messages")
    op.drop_table("staged_messages")
    op.drop_table("ingest_batches")
