"""Destination status from evidence: verified_at

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-01 23:40:00

Issue 15 (item 3): a new destination with a wrong secret or a missing bucket showed
`healthy`. `destinations.verified_at` is when a write to it first succeeded (a passing
connection test or a delivery); while it is NULL the destination is `untested`.

An existing destination is verified by the evidence the database still holds: its latest
delivered message, or a passing connection test of the saved destination in the audit log
(a test of a form's unsaved values proves nothing about it). One with neither is
`untested` until its next delivery or passing test.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("destinations", sa.Column("verified_at", sa.Float(), nullable=True))
    conn = op.get_bind()
    conn.execute(
        sa.text(
            "UPDATE destinations SET verified_at = (SELECT MAX(m.delivered_at) FROM messages m"
            " WHERE m.destination_id = destinations.id AND m.delivered_at IS NOT NULL)"
        )
    )
    tested = conn.execute(
        sa.text(
            "SELECT target, MIN(at) AS at, changes FROM audit_log"
            " WHERE action = 'destination.tested' GROUP BY target, changes"
        )
    ).all()
    for target, at, changes in tested:
        try:
            outcome = json.loads(changes or "{}")
        except ValueError:
            continue
        if not isinstance(outcome, dict) or outcome.get("ok") is not True or outcome.get("unsaved"):
            continue
        conn.execute(
            sa.text(
                "UPDATE destinations SET verified_at = :at WHERE id = :id AND verified_at IS NULL"
            ),
            {"at": at, "id": str(target).removeprefix("destination:")},
        )


def downgrade() -> None:
    with op.batch_alter_table("destinations") as batch:
        batch.drop_column("verified_at")
