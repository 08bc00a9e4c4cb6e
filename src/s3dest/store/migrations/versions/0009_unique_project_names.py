"""Unique project names

Revision ID: 0009
Revises: 0005
Create Date: 2026-12-01 19:45:00

Issue 15: `--project NAME` picked one of several projects of that name without a word.
Names become unique per server (a unique index). An older database may already hold
duplicates: the upgrade keeps the oldest project's name and renames each later one to
"NAME-2", "NAME-3", … (the first such name that is free), so it never fails on them, and
`--project NAME` still means the project it meant before (the oldest: the CLI took the
first by id, and ids are time-ordered). A renamed project keeps its id and its API keys.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, name FROM projects ORDER BY created_at, id")).all()
    taken = {name for _id, name in rows}
    seen: set[str] = set()
    for project_id, name in rows:
        if name not in seen:
            seen.add(name)
            continue
        suffix = 2
        while f"{name}-{suffix}" in taken:
            suffix += 1
        new_name = f"{name}-{suffix}"
        taken.add(new_name)
        seen.add(new_name)
        conn.execute(
            sa.text("UPDATE projects SET name = :name WHERE id = :id"),
            {"name": new_name, "id": project_id},
        )
    op.create_index("ux_projects_name", "projects", ["name"], unique=True)


def downgrade() -> None:
    # Renamed duplicates keep their new names: the old ones could not be told apart.
    op.drop_index("ux_projects_name", table_name="projects")
