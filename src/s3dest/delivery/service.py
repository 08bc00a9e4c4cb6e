"""The delivery service: a project's delivery records, replay, counts.

What the API, the CLI and the dashboard ask of the queue, with typed keyword-only input;
it returns the store's typed records (`DeliveryRecord`), and `public_record` is their
public JSON form (the API's `MessageRecord`, and `s3dest deliveries show`).
"""

from __future__ import annotations

import builtins
from collections.abc import Collection
from dataclasses import fields
from typing import Any

from sqlalchemy import Engine

from s3dest.access import audit
from s3dest.access.audit import Actor
from s3dest.keys import time_namespace
from s3dest.store import queue
from s3dest.store.destinations import get_destination
from s3dest.store.engine import atomic
from s3dest.store.queue import CLAIMABLE, STATES, WAITING, Attempt, DeliveryRecord, MessageState

__all__ = [
    "STATES",
    "WAITING",
    "DeliveryRecord",
    "MessageState",
    "as_dict",
    "counts",
    "get",
    "list",
    "pending_counts",
    "public_record",
    "queue_depth",
    "replay_destination",
    "replay_message",
]


def get(engine: Engine, *, project_id: str, event_id: str) -> DeliveryRecord:
    """One message's record with its attempts; NotFound outside the project."""
    return queue.get_record(engine, project_id, event_id)


def list(  # the service's verb, as in `deliveries.list(...)`; `builtins.list` below
    engine: Engine,
    *,
    project_id: str,
    destination: str | None = None,
    state: MessageState | None = None,
    limit: int = 100,
) -> builtins.list[DeliveryRecord]:
    """The most recently updated records, newest first; `destination` is an id or a name."""
    destination_id = get_destination(engine, project_id, destination).id if destination else None
    return queue.list_records(
        engine, project_id, destination_id=destination_id, state=state, limit=limit
    )


def replay_message(engine: Engine, *, project_id: str, event_id: str, actor: Actor) -> None:
    """Queue a parked message again (Conflict if it is not parked, NotFound if unknown)."""
    with atomic(engine):
        queue.replay_message(engine, project_id, event_id)
        audit.record(
            engine,
            actor,
            project_id=project_id,
            action="message.replayed",
            target=f"message:{event_id}",
        )


def replay_destination(engine: Engine, *, project_id: str, destination: str, actor: Actor) -> int:
    """Queue every parked message of a destination (id or name) again; returns how many."""
    row = get_destination(engine, project_id, destination)
    with atomic(engine):
        count = queue.replay_destination(engine, row.id)
        audit.record(
            engine,
            actor,
            project_id=project_id,
            action="destination.replayed",
            target=f"destination:{row.id}",
            changes={"replayed": count},
        )
    return count


def counts(engine: Engine, *, project_id: str) -> dict[str, dict[str, int]]:
    """destination id → state → number of the project's messages."""
    return queue.counts_by_state(engine, project_id)


def queue_depth(engine: Engine) -> int:
    """Messages of every project waiting to be delivered (the s3dest_queue_depth gauge)."""
    return queue.queue_depth(engine)


def pending_counts(
    engine: Engine, *, destination_ids: Collection[str] | None = None
) -> dict[tuple[str, str], int]:
    """(destination id, state) → messages not delivered yet (s3dest_messages), of those
    destinations (None: of every project)."""
    return queue.pending_counts(engine, destination_ids)


def public_record(record: DeliveryRecord) -> dict[str, Any]:
    """A record as the API's `MessageRecord` (camelCase; `history` only for one message)."""
    out: dict[str, Any] = {
        "eventId": record.event_id,
        "destinationId": record.destination_id,
        "state": record.state.value,
        "eventTime": time_namespace(record.event_time_ns)["rfc3339_nano"],
        "acceptedAt": record.accepted_at,
        "objectName": record.object_name,
        "size": record.body_size,
        "attempts": record.attempts,
        "nextAttemptAt": record.next_attempt_at if record.state in CLAIMABLE else None,
        "bucket": record.bucket,
        "key": record.object_key,
        "etag": record.etag,
        "versionId": record.version_id,
        "lastError": record.last_error,
        "lastErrorKind": record.last_error_kind,
        "deliveredAt": record.delivered_at,
        "updatedAt": record.updated_at,
        "installationId": record.installation_id,
        # SPEC §9: the batch object this message was written in, and its line (or None).
        "batch": record.batch,
    }
    if record.history is not None:
        out["history"] = [
            {
                "worker": h.worker,
                "startedAt": h.started_at,
                "finishedAt": h.finished_at,
                "outcome": h.outcome,
                "error": h.error,
            }
            for h in record.history
        ]
    return out


_RECORD_FIELDS = tuple(f.name for f in fields(DeliveryRecord) if f.name != "history")
_ATTEMPT_FIELDS = tuple(f.name for f in fields(Attempt))


def as_dict(record: DeliveryRecord) -> dict[str, Any]:
    """A record as a plain dict of the store's names (with `history`, a list of dicts, for
    one message), for pages that decorate it before rendering."""
    out = {name: getattr(record, name) for name in _RECORD_FIELDS}
    if record.history is not None:
        out["history"] = [
            {name: getattr(h, name) for name in _ATTEMPT_FIELDS} for h in record.history
        ]
    return out
