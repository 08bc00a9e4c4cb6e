"""Stored message bodies, read back for key previews and the message page.

A body is held until its message is delivered (then dropped, unless retention keeps it):
these read whatever is still there, never more than a page of recent rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Row, select

from s3dest.store.engine import reading
from s3dest.store.queue.states import MessageState
from s3dest.store.tables import messages


@dataclass(frozen=True, slots=True)
class StoredBody:
    """What a key template reads of a stored message: its stamp and its data."""

    event_id: str
    destination_id: str
    state: MessageState
    event_time_ns: int
    connection_id: str
    topic: str
    body: bytes | None  # compact {"data": ...}
    envelope: bytes | None  # chunked messages: data without result


_COLUMNS = (
    messages.c.event_id,
    messages.c.destination_id,
    messages.c.state,
    messages.c.event_time_ns,
    messages.c.connection_id,
    messages.c.topic,
    messages.c.body,
    messages.c.envelope,
)


def _stored(r: Row[Any, Any, Any, Any, Any, Any, Any, Any]) -> StoredBody:
    return StoredBody(
        event_id=r.event_id,
        destination_id=r.destination_id,
        state=MessageState(r.state),
        event_time_ns=r.event_time_ns,
        connection_id=r.connection_id,
        topic=r.topic,
        body=bytes(r.body) if r.body is not None else None,
        envelope=bytes(r.envelope) if r.envelope is not None else None,
    )


#: How many of the latest messages `recent_bodies` looks through for ones with a body:
#: bounded, so that a project of delivered messages only (bodies dropped) costs one page.
_RECENT_SCAN = 200


def recent_bodies(
    engine: Engine, project_id: str, *, destination_id: str | None = None, limit: int = 5
) -> list[StoredBody]:
    """The latest messages (newest first) whose body s3dest still holds, for a preview."""
    latest = select(messages.c.event_id).where(messages.c.project_id == project_id)
    if destination_id:
        latest = latest.where(messages.c.destination_id == destination_id)
    latest = latest.order_by(messages.c.updated_at.desc()).limit(_RECENT_SCAN)
    stmt = (
        select(*_COLUMNS)
        .where(
            messages.c.event_id.in_(latest.scalar_subquery()),
            (messages.c.body.is_not(None)) | (messages.c.envelope.is_not(None)),
        )
        .order_by(messages.c.updated_at.desc())
        .limit(limit)
    )
    with reading(engine) as conn:
        rows = conn.execute(stmt).all()
    return [_stored(r) for r in rows]


def stored_body(engine: Engine, project_id: str, event_id: str) -> StoredBody | None:
    """One message's stored body (None: not held any more, or chunked without envelope)."""
    with reading(engine) as conn:
        r = conn.execute(
            select(*_COLUMNS).where(
                messages.c.event_id == event_id, messages.c.project_id == project_id
            )
        ).first()
    if r is None or (r.body is None and r.envelope is None):
        return None
    return _stored(r)
