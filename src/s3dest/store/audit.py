"""The audit log's rows: who changed what in a project, newest first.

Rows are written by s3dest.access.audit, which masks secrets before they get here; this
module only stores and reads them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Engine, insert, select

from s3dest.messages import uuid7
from s3dest.store.engine import transaction
from s3dest.store.tables import audit_log

MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: str
    project_id: str
    at: float
    actor: str
    key_prefix: str | None
    action: str
    target: str
    changes: dict[str, Any]


def insert_entry(
    engine: Engine,
    *,
    project_id: str,
    actor: str,
    key_prefix: str | None,
    action: str,
    target: str,
    changes: dict[str, Any],
) -> AuditRow:
    row = AuditRow(
        id=uuid7(),
        project_id=project_id,
        at=time.time(),
        actor=actor[:100],
        key_prefix=key_prefix,
        action=action,
        target=target[:300],
        changes=changes,
    )
    with transaction(engine) as conn:
        conn.execute(
            insert(audit_log).values(
                id=row.id,
                project_id=project_id,
                at=row.at,
                actor=row.actor,
                key_prefix=key_prefix,
                action=action,
                target=row.target,
                changes=orjson.dumps(changes, default=str).decode(),
            )
        )
    return row


def list_entries(engine: Engine, project_id: str, limit: int = 100) -> list[AuditRow]:
    """The project's newest entries first (ids are uuid7: ordered by time)."""
    query = (
        select(audit_log)
        .where(audit_log.c.project_id == project_id)
        .order_by(audit_log.c.id.desc())
        .limit(max(1, min(limit, MAX_LIMIT)))
    )
    with transaction(engine) as conn:
        rows = conn.execute(query).all()
    return [
        AuditRow(
            id=r.id,
            project_id=r.project_id,
            at=r.at,
            actor=r.actor,
            key_prefix=r.key_prefix,
            action=r.action,
            target=r.target,
            changes=orjson.loads(r.changes),
        )
        for r in rows
    ]
