"""Orphaned multipart uploads: recorded by the worker, listed for the user."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from sqlalchemy import Engine, func, insert, select

from s3dest.errors import OrphanedUpload
from s3dest.store.engine import transaction
from s3dest.store.tables import orphaned_uploads


@dataclass(frozen=True, slots=True)
class OrphanRow:
    id: str
    destination_id: str
    event_id: str
    bucket: str
    key: str
    upload_id: str
    reason: str
    created_at: float


def record_orphan(
    engine: Engine, destination_id: str, event_id: str, orphan: OrphanedUpload
) -> None:
    with transaction(engine) as conn:
        conn.execute(
            insert(orphaned_uploads).values(
                id=str(uuid.uuid4()),
                destination_id=destination_id,
                event_id=event_id,
                bucket=orphan.bucket,
                key=orphan.key,
                upload_id=orphan.upload_id,
                reason=orphan.reason,
                created_at=time.time(),
            )
        )


def orphan_counts(engine: Engine, destination_ids: list[str]) -> dict[str, int]:
    """destination id → orphaned uploads recorded (only those that have some)."""
    if not destination_ids:
        return {}
    query = (
        select(orphaned_uploads.c.destination_id, func.count())
        .where(orphaned_uploads.c.destination_id.in_(destination_ids))
        .group_by(orphaned_uploads.c.destination_id)
    )
    with transaction(engine) as conn:
        return {r[0]: int(r[1]) for r in conn.execute(query)}


def list_orphans(engine: Engine, destination_id: str, limit: int = 1000) -> list[OrphanRow]:
    query = (
        select(orphaned_uploads)
        .where(orphaned_uploads.c.destination_id == destination_id)
        .order_by(orphaned_uploads.c.created_at.desc())
        .limit(limit)
    )
    with transaction(engine) as conn:
        return [OrphanRow(**r._mapping) for r in conn.execute(query)]
