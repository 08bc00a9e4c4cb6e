"""The daily summary webhook event: the last day each endpoint was summarized

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 18:00:00

`webhooks.summary_day` is the last UTC day (`YYYY-MM-DD`) whose `summary.daily` was written
to the endpoint's outbox, NULL before the first. The summary's write transaction moves it
forward with a conditional update (`summary_day IS NULL OR summary_day < day`) and writes
a delivery only for the rows it moved, so several processes on one database, and a
process restarted the same day, write one summary per endpoint and day. It lives on the
endpoint's row rather than beside the outbox rows, which retention prunes (after
S3DEST_RETAIN_DELIVERED, maybe minutes) while the day is still the most recent one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("webhooks", sa.Column("summary_day", sa.String(10), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhooks") as batch:
        batch.drop_column("summary_day")
