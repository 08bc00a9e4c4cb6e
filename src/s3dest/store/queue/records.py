"""Delivery records: what happened to a message, read for the API, the CLI and the dashboard."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Engine, RowMapping, func, select

from s3dest.errors import NotFound
from s3dest.store.engine import reading
from s3dest.store.queue.states import PENDING, WAITING, MessageState
from s3dest.store.tables import attempts, messages


@dataclass(frozen=True, slots=True)
class Attempt:
    """One PUT attempt (a row of delivery_attempts)."""

    worker: str
    started_at: float
    finished_at: float
    outcome: str  # the state the attempt left the message in
    error: str | None


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """A message's delivery state (the columns of `messages` but its body and lease)."""

    event_id: str
    project_id: str
    destination_id: str
    state: MessageState
    event_time_ns: int
    accepted_at: float
    connection_id: str
    topic: str
    object_name: str
    body_size: int
    attempts: int
    next_attempt_at: float | None
    bucket: str | None
    object_key: str | None
    etag: str | None
    version_id: str | None
    last_error: str | None
    last_error_kind: str | None
    delivered_at: float | None
    updated_at: float
    installation_id: str | None = None  # None on records stored before migration 0007
    # SPEC §9: the batch it is sealed into (its leader's event id, the leader's own) and
    # its line in that object, from 0; None when it is written as an object of its own.
    batch_leader: str | None = None
    batch_line: int | None = None
    # Its attempts, oldest first: read for one message (`get_record`), None in lists.
    history: tuple[Attempt, ...] | None = None

    @property
    def batch(self) -> dict[str, str | int] | None:
        """Its batch as the API's record names it: the leader's event id and its line."""
        if self.batch_leader is None or self.batch_line is None:
            return None
        return {"id": self.batch_leader, "line": self.batch_line}


_RECORD_COLUMNS = (
    messages.c.event_id,
    messages.c.project_id,
    messages.c.destination_id,
    messages.c.state,
    messages.c.event_time_ns,
    messages.c.accepted_at,
    messages.c.connection_id,
    messages.c.topic,
    messages.c.object_name,
    messages.c.body_size,
    messages.c.attempts,
    messages.c.next_attempt_at,
    messages.c.bucket,
    messages.c.object_key,
    messages.c.etag,
    messages.c.version_id,
    messages.c.last_error,
    messages.c.last_error_kind,
    messages.c.delivered_at,
    messages.c.updated_at,
    messages.c.installation_id,
    messages.c.batch_leader,
    messages.c.batch_line,
)


def _record(row: RowMapping, history: tuple[Attempt, ...] | None = None) -> DeliveryRecord:
    fields = dict(row)
    fields["state"] = MessageState(fields["state"])
    return DeliveryRecord(**fields, history=history)


def get_record(engine: Engine, project_id: str, event_id: str) -> DeliveryRecord:
    with reading(engine) as conn:
        row = conn.execute(
            select(*_RECORD_COLUMNS).where(
                messages.c.event_id == event_id, messages.c.project_id == project_id
            )
        ).first()
        if row is None:
            raise NotFound(f"no message {event_id!r} in this project")
        tries = conn.execute(
            select(
                attempts.c.worker,
                attempts.c.started_at,
                attempts.c.finished_at,
                attempts.c.outcome,
                attempts.c.error,
            )
            .where(attempts.c.event_id == event_id)
            .order_by(attempts.c.id)
        ).all()
    return _record(row._mapping, tuple(Attempt(*t) for t in tries))


def list_records(
    engine: Engine,
    project_id: str,
    *,
    destination_id: str | None = None,
    state: str | None = None,
    limit: int = 100,
) -> list[DeliveryRecord]:
    """The project's most recently updated records, newest first."""
    stmt = select(*_RECORD_COLUMNS).where(messages.c.project_id == project_id)
    if destination_id:
        stmt = stmt.where(messages.c.destination_id == destination_id)
    if state:
        stmt = stmt.where(messages.c.state == state)
    stmt = stmt.order_by(messages.c.updated_at.desc()).limit(limit)
    with reading(engine) as conn:
        return [_record(r._mapping) for r in conn.execute(stmt)]


def counts_by_state(engine: Engine, project_id: str | None = None) -> dict[str, dict[str, int]]:
    """destination_id → state → count."""
    stmt = select(messages.c.destination_id, messages.c.state, func.count()).group_by(
        messages.c.destination_id, messages.c.state
    )
    if project_id is not None:
        stmt = stmt.where(messages.c.project_id == project_id)
    out: dict[str, dict[str, int]] = {}
    with reading(engine) as conn:
        for destination_id, state, count in conn.execute(stmt):
            out.setdefault(destination_id, {})[state] = int(count)
    return out


def pending_counts(
    engine: Engine, destination_ids: Collection[str] | None = None
) -> dict[tuple[str, str], int]:
    """(destination id, state) → count of messages not delivered yet, of those destinations
    (None: of every project)."""
    if destination_ids is not None and not destination_ids:
        return {}
    stmt = (
        select(messages.c.destination_id, messages.c.state, func.count())
        .where(messages.c.state.in_(PENDING))
        .group_by(messages.c.destination_id, messages.c.state)
    )
    if destination_ids is not None:
        stmt = stmt.where(messages.c.destination_id.in_(sorted(destination_ids)))
    with reading(engine) as conn:
        return {(d, s): int(n) for d, s, n in conn.execute(stmt)}


def queue_depth(engine: Engine) -> int:
    """Messages waiting to be delivered (all projects): pending, but for parked ones."""
    with reading(engine) as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(messages).where(messages.c.state.in_(WAITING))
            ).scalar_one()
        )
