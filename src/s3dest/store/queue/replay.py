"""Replay: parked messages (a message error, since fixed) are queued again.

A replayed message is written as an object of its own, even if it was once sealed into a
batch (SPEC §9): its batch may have been written, or re-formed, without it since.
"""

from __future__ import annotations

import time

from sqlalchemy import Engine, select, update

from s3dest.errors import Conflict, NotFound
from s3dest.store.engine import transaction
from s3dest.store.queue.batches import OUT_OF_BATCH
from s3dest.store.queue.states import MessageState
from s3dest.store.tables import messages


def replay_message(engine: Engine, project_id: str, event_id: str) -> None:
    now = time.time()
    with transaction(engine) as conn:
        row = conn.execute(
            select(messages.c.state).where(
                messages.c.event_id == event_id, messages.c.project_id == project_id
            )
        ).first()
        if row is None:
            raise NotFound(f"no message {event_id!r} in this project")
        if row.state != MessageState.PARKED:
            raise Conflict(
                f"message {event_id} is {row.state}, not parked; only parked messages are "
                "replayed (queued and held ones are delivered by themselves)"
            )
        conn.execute(
            update(messages)
            .where(messages.c.event_id == event_id)
            .values(state=MessageState.QUEUED, next_attempt_at=now, updated_at=now, **OUT_OF_BATCH)
        )


def replay_destination(engine: Engine, destination_id: str) -> int:
    """Queue every parked message of a destination again; returns how many."""
    now = time.time()
    with transaction(engine) as conn:
        result = conn.execute(
            update(messages)
            .where(
                messages.c.destination_id == destination_id,
                messages.c.state == MessageState.PARKED,
            )
            .values(state=MessageState.QUEUED, next_attempt_at=now, updated_at=now, **OUT_OF_BATCH)
        )
    return int(result.rowcount or 0)
