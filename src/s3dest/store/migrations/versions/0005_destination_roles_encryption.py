"""Role destinations, encryption, canned ACL and tags (SPEC §8)

Revision ID: 0005
Revises: 0006
Create Date: 2026-12-01 17:00:00

Issue 14: a destination may name an IAM role (role_arn) instead of keys, so the key
columns become nullable; s3dest keeps one external id per destination; the bucket options
are sent with every object. Existing destinations keep their keys and get none of the
options (all NULL): what they wrote before, they write after.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0006"  # 0006 (orphaned uploads) landed first: 0004 → 0006 → 0005
branch_labels = None
depends_on = None

_NEW = (
    ("role_arn", sa.String(length=2048)),
    ("external_id", sa.String(length=64)),
    ("server_side_encryption", sa.String(length=16)),
    ("kms_key_id", sa.String(length=2048)),
    ("bucket_key_enabled", sa.Boolean()),
    ("acl", sa.String(length=32)),
    ("tags", sa.Text()),
)


def upgrade() -> None:
    with op.batch_alter_table("destinations", schema=None) as batch_op:
        batch_op.alter_column("access_key_id", existing_type=sa.String(length=128), nullable=True)
        batch_op.alter_column("secret_access_key_enc", existing_type=sa.Text(), nullable=True)
        for name, kind in _NEW:
            batch_op.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    # Role destinations have no keys to go back to: they are removed with their messages'
    # destination (the queue keeps rows by id only).
    op.execute("DELETE FROM destinations WHERE access_key_id IS NULL")
    with op.batch_alter_table("destinations", schema=None) as batch_op:
        for name, _kind in reversed(_NEW):
            batch_op.drop_column(name)
        batch_op.alter_column("secret_access_key_enc", existing_type=sa.Text(), nullable=False)
        batch_op.alter_column("access_key_id", existing_type=sa.String(length=128), nullable=False)
