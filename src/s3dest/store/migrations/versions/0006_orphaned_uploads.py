"""Orphaned multipart uploads

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-01 16:30:00

Issue 14: a multipart upload whose abort was refused (a PutObject-only key may not abort)
is recorded, so the user sees it and the lifecycle rule that removes it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orphaned_uploads",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("destination_id", sa.String(length=36), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("bucket", sa.String(length=63), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("upload_id", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["destination_id"], ["destinations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("orphaned_uploads", schema=None) as batch_op:
        batch_op.create_index("ix_orphaned_uploads_destination", ["destination_id"], unique=False)


def downgrade() -> None:
    op.drop_table("orphaned_uploads")
