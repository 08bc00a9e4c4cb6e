"""A sealed batch keeps its compression

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 18:00:00

`batch_compression` is set on a batch's leader when the batch is sealed (SPEC §9), NULL
elsewhere. The object's bytes and its key's extension follow the compression, so a batch
written with the destination's current setting instead would land at another key, with
other bytes, when `batch.compression` changed between two attempts. A leader sealed
before this revision has NULL and is written with the destination's setting, as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_TABLES = ("messages", "staged_messages")


def upgrade() -> None:
    for table in _TABLES:
        op.add_column(table, sa.Column("batch_compression", sa.String(8), nullable=True))


def downgrade() -> None:
    for table in _TABLES:
        op.drop_column(table, "batch_compression")
