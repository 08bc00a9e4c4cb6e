"""The stored amp.yaml of each project (its source text, as uploaded)."""

from __future__ import annotations

import time

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from s3dest.store.engine import transaction
from s3dest.store.tables import manifests


def save_source(engine: Engine, project_id: str, source: str) -> None:
    now = time.time()
    insert_fn = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    stmt = insert_fn(manifests).values(project_id=project_id, source=source, updated_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=[manifests.c.project_id], set_={"source": source, "updated_at": now}
    )
    with transaction(engine) as conn:
        conn.execute(stmt)


def load_source(engine: Engine, project_id: str) -> str | None:
    with transaction(engine) as conn:
        source = conn.execute(
            select(manifests.c.source).where(manifests.c.project_id == project_id)
        ).scalar_one_or_none()
    return None if source is None else str(source)
