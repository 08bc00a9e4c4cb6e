"""The broker's operations: enqueue, claim with a lease, extend, release, reap, finish.

A claim sets a lease (owner + expiry). Every transition out of ``delivering`` is fenced on
the owner, so a worker whose lease expired cannot overwrite the work of the worker that
took over. On PostgreSQL claims use ``FOR UPDATE SKIP LOCKED``; on SQLite the write lock
(BEGIN IMMEDIATE) serialises claimers.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, insert, select, update

from s3dest.store import outbox
from s3dest.store.engine import transaction
from s3dest.store.queue import _postgres, _sqlite
from s3dest.store.queue.batches import follow_leaders
from s3dest.store.queue.health import healthy
from s3dest.store.queue.states import MessageState
from s3dest.store.tables import message_chunks, messages


@dataclass(frozen=True, slots=True)
class Claimed:
    event_id: str
    project_id: str
    destination_id: str
    event_time_ns: int
    accepted_at: float
    connection_id: str
    topic: str
    body: bytes | None
    body_size: int
    chunked: bool
    envelope: bytes | None
    attempts: int
    # The destination's configuration version at claim time (read in the claim's
    # transaction), so the worker knows without another query whether to rebuild its client.
    destination_version: int | None = None
    # SPEC §9: the batch this message leads (its own event id), whose whole object its PUT
    # writes; None for a message written alone.
    batch_leader: str | None = None
    # The leader's: the compression its batch was sealed with (SPEC §9).
    batch_compression: str | None = None

    @property
    def leads_batch(self) -> bool:
        return self.batch_leader is not None and self.batch_leader == self.event_id


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt did; recorded by `finish`."""

    event_id: str
    state: str  # a MessageState: delivered | retrying | parked | held
    started_at: float
    finished_at: float
    bucket: str | None = None
    key: str | None = None
    etag: str | None = None
    version: str | None = None
    error: str | None = None
    error_kind: str | None = None
    next_attempt_at: float | None = None
    # For deliveries: the destination and the configuration version that wrote it. A
    # success proves the destination works, so `finish` clears its failure (if it is
    # still on that version) and lets its held messages go.
    destination_id: str | None = None
    destination_version: int | None = None
    # The attempt wrote a whole batch (SPEC §9): its members follow this outcome.
    batch: bool = False


# ---------------------------------------------------------------------------
# Accepting messages.


def enqueue(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert accepted messages (inside the caller's transaction)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        names = enqueue_columns(rows[0])
        defaults = [_MESSAGE_DEFAULTS.get(name) for name in names]
        params = {
            f"m_{name}": [row.get(name, default) for row in rows]
            for name, default in zip(names, defaults, strict=True)
        }
        conn.exec_driver_sql(_postgres.enqueue_statement(names), params)
    else:
        # One executemany of plain tuples: SQLAlchemy's insert() spent ~40% of a batch's
        # write in its per-row parameter processing, all of it with SQLite's write lock
        # held (every other project's ingest waits for that lock).
        names = enqueue_columns(rows[0])
        conn.exec_driver_sql(
            sqlite_insert_statement("messages", names), list(row_values(rows, names))
        )


def row_values(rows: Sequence[dict[str, Any]], names: tuple[str, ...]) -> Iterator[tuple[Any, ...]]:
    """`rows` as tuples of `names`' values, as sqlite3 binds them (plain str/int/float/
    bytes/bool/None); a missing key gets the column default insert() would fill in."""
    defaults = [_MESSAGE_DEFAULTS.get(name) for name in names]
    pairs = tuple(zip(names, defaults, strict=True))
    for row in rows:
        yield tuple(row.get(name, default) for name, default in pairs)


# Scalar Python-side defaults of `messages` (what insert() fills in for a missing key).
_MESSAGE_DEFAULTS: dict[str, Any] = {
    c.name: c.default.arg  # type: ignore[attr-defined]
    for c in messages.columns
    if c.default is not None and c.default.is_scalar
}


_SQLITE_INSERTS: dict[tuple[str, tuple[str, ...]], str] = {}


def sqlite_insert_statement(table: str, names: tuple[str, ...]) -> str:
    """``INSERT INTO table (names) VALUES (?, …)``, made once per column set."""
    stmt = _SQLITE_INSERTS.get((table, names))
    if stmt is None:
        stmt = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
        _SQLITE_INSERTS[(table, names)] = stmt
    return stmt


def enqueue_columns(row: dict[str, Any]) -> tuple[str, ...]:
    """The `messages` columns a batch like `row` sets: its keys and the defaulted ones."""
    present = set(row) | set(_MESSAGE_DEFAULTS)
    return tuple(c.name for c in messages.columns if c.name in present)


def write_chunks(conn: Connection, event_id: str, chunks: Iterable[bytes]) -> int:
    size = 0
    batch: list[dict[str, Any]] = []
    for seq, chunk in enumerate(chunks):
        batch.append({"event_id": event_id, "seq": seq, "data": chunk})
        size += len(chunk)
        if len(batch) >= 4:
            conn.execute(insert(message_chunks), batch)
            batch = []
    if batch:
        conn.execute(insert(message_chunks), batch)
    return size


def read_chunks(engine: Engine, event_id: str) -> Iterator[bytes]:
    """Stream a large body chunk by chunk: one chunk in memory at a time."""
    seq = 0
    while True:
        with engine.connect() as conn:
            row = conn.execute(
                select(message_chunks.c.data).where(
                    message_chunks.c.event_id == event_id, message_chunks.c.seq == seq
                )
            ).first()
        if row is None:
            return
        yield bytes(row.data)
        seq += 1


# ---------------------------------------------------------------------------
# Leases: claim, extend, release, reap.


def claim(
    engine: Engine,
    owner: str,
    limit: int,
    lease_seconds: float,
    exclude_projects: Sequence[str] = (),
) -> list[Claimed]:
    """Lease up to `limit` due messages to `owner` (with their destinations' versions),
    none of the projects in `exclude_projects`."""
    now = time.time()
    if engine.dialect.name == "sqlite":
        return _claim_sqlite(engine, owner, limit, now, now + lease_seconds, exclude_projects)
    params: dict[str, Any] = {
        "c_now": now,
        "c_limit": limit,
        "c_owner": owner,
        "c_expires": now + lease_seconds,
    }
    statement = _postgres.CLAIM
    if exclude_projects:
        statement = _postgres.CLAIM_EXCLUDING
        params["c_exclude"] = list(exclude_projects)
    with transaction(engine) as conn:
        rows = conn.execute(statement, params).all()
    return [
        Claimed(
            event_id=r.event_id,
            project_id=r.project_id,
            destination_id=r.destination_id,
            event_time_ns=r.event_time_ns,
            accepted_at=r.accepted_at,
            connection_id=r.connection_id,
            topic=r.topic,
            body=bytes(r.body) if r.body is not None else None,
            body_size=r.body_size,
            chunked=r.chunked,
            envelope=bytes(r.envelope) if r.envelope is not None else None,
            attempts=r.attempts,
            destination_version=r.destination_version,
            batch_leader=r.batch_leader,
            batch_compression=r.batch_compression,
        )
        for r in rows
    ]


def _claim_sqlite(
    engine: Engine,
    owner: str,
    limit: int,
    now: float,
    expires: float,
    exclude_projects: Sequence[str],
) -> list[Claimed]:
    with transaction(engine) as conn:
        if exclude_projects:
            passed_over = set(exclude_projects)
            due: list[tuple[float, str]] = []
            for (project_id,) in conn.exec_driver_sql(_sqlite.DUE_PROJECTS).all():
                if project_id not in passed_over:
                    due += conn.exec_driver_sql(
                        _sqlite.DUE_OF_PROJECT, (project_id, now, limit)
                    ).all()
            oldest = [event_id for _, event_id in heapq.nsmallest(limit, due)]
            if not oldest:
                return []
            rows = conn.exec_driver_sql(
                _sqlite.CLAIM_IDS, (owner, expires, now, orjson.dumps(oldest).decode())
            ).all()
        else:
            rows = conn.exec_driver_sql(_sqlite.CLAIM, (owner, expires, now, now, limit)).all()
        if not rows:
            return []
        ids = orjson.dumps(sorted({r[2] for r in rows})).decode()
        versions: dict[str, int] = dict(conn.exec_driver_sql(_sqlite.VERSIONS, (ids,)).all())
    return [
        Claimed(
            event_id,
            project_id,
            destination_id,
            event_time_ns,
            accepted_at,
            connection_id,
            topic,
            body,
            body_size,
            bool(chunked),
            envelope,
            attempts,
            versions.get(destination_id),
            batch_leader,
            batch_compression,
        )
        for (
            event_id,
            project_id,
            destination_id,
            event_time_ns,
            accepted_at,
            connection_id,
            topic,
            body,
            body_size,
            chunked,
            envelope,
            attempts,
            batch_leader,
            batch_compression,
        ) in rows
    ]


def reap_expired_leases(engine: Engine) -> int:
    """Messages whose worker died (lease expired) become claimable again."""
    now = time.time()
    with transaction(engine) as conn:
        result = conn.execute(
            update(messages)
            .where(messages.c.state == MessageState.DELIVERING, messages.c.lease_expires_at < now)
            .values(
                state=MessageState.QUEUED,
                lease_owner=None,
                lease_expires_at=None,
                next_attempt_at=now,
                updated_at=now,
            )
        )
    return int(result.rowcount or 0)


def extend_leases(
    engine: Engine, owner: str, event_ids: Sequence[str], lease_seconds: float
) -> set[str]:
    """Extend the leases `owner` still holds among `event_ids`; returns those it holds."""
    if not event_ids:
        return set()
    with transaction(engine) as conn:
        rows = conn.execute(
            update(messages)
            .where(
                messages.c.event_id.in_(list(event_ids)),
                messages.c.lease_owner == owner,
                messages.c.state == MessageState.DELIVERING,
            )
            .values(lease_expires_at=time.time() + lease_seconds)
            .returning(messages.c.event_id)
        ).all()
    return {r.event_id for r in rows}


def release(engine: Engine, owner: str, event_ids: Sequence[str] | None = None) -> int:
    """Give leased messages back (graceful shutdown)."""
    now = time.time()
    stmt = update(messages).where(
        messages.c.lease_owner == owner, messages.c.state == MessageState.DELIVERING
    )
    if event_ids is not None:
        stmt = stmt.where(messages.c.event_id.in_(list(event_ids)))
    with transaction(engine) as conn:
        result = conn.execute(
            stmt.values(
                state=MessageState.QUEUED,
                lease_owner=None,
                lease_expires_at=None,
                next_attempt_at=now,
                updated_at=now,
            )
        )
    return int(result.rowcount or 0)


# ---------------------------------------------------------------------------
# Outcomes.


def finish(engine: Engine, owner: str, worker: str, outcomes: Sequence[Outcome]) -> int:
    """Record a batch of attempts in one transaction; returns how many still held the lease.

    Every outcome gets an attempt row. A message's record is written by its first outcome
    in the batch, and only while `owner` still holds its lease; a delivered message's
    chunks go with it (only then: a lost lease leaves them to the new owner).
    """
    if not outcomes:
        return 0
    now = time.time()
    first: dict[str, Outcome] = {}
    for o in outcomes:
        first.setdefault(o.event_id, o)
    updates = list(first.values())
    proven = {
        (o.destination_id, o.destination_version)
        for o in outcomes
        if o.state == MessageState.DELIVERED
        and o.destination_id
        and o.destination_version is not None
    }
    with transaction(engine) as conn:
        if engine.dialect.name == "postgresql":
            done = _finish_postgresql(conn, owner, worker, outcomes, updates, now)
        else:
            done = _finish_sqlite(conn, owner, worker, outcomes, updates, now)
        for destination_id, version in sorted(proven):
            assert destination_id is not None and version is not None
            healthy(conn, destination_id, now, version=version)
        leaders = [o for o in updates if o.batch]
        if leaders:  # SPEC §9: a batch's members follow their leader
            follow_leaders(
                conn,
                [o.event_id for o in leaders if o.state == MessageState.DELIVERED],
                [o.event_id for o in leaders if o.state == MessageState.PARKED],
                now,
            )
        parked = [o.event_id for o in updates if o.state == MessageState.PARKED]
        if parked:  # message.parked, in the transaction that parked them
            outbox.messages_parked(conn, parked, now)
    return done


def _finish_postgresql(
    conn: Connection,
    owner: str,
    worker: str,
    outcomes: Sequence[Outcome],
    updates: Sequence[Outcome],
    now: float,
) -> int:
    delivered = MessageState.DELIVERED
    params = {
        "owner": owner,
        "worker": worker,
        "now": now,
        "ids": [o.event_id for o in updates],
        "states": [o.state for o in updates],
        "buckets": [o.bucket for o in updates],
        "keys": [o.key for o in updates],
        "etags": [o.etag for o in updates],
        "versions": [o.version for o in updates],
        "errors": [o.error for o in updates],
        "kinds": [o.error_kind for o in updates],
        "nexts": [o.next_attempt_at if o.next_attempt_at is not None else now for o in updates],
        "delivered": [o.finished_at if o.state == delivered else None for o in updates],
        "a_ids": [o.event_id for o in outcomes],
        "a_started": [o.started_at for o in outcomes],
        "a_finished": [o.finished_at for o in outcomes],
        "a_states": [o.state for o in outcomes],
        "a_errors": [o.error for o in outcomes],
    }
    return int(conn.exec_driver_sql(_postgres.FINISH, params).scalar_one())


def _finish_sqlite(
    conn: Connection,
    owner: str,
    worker: str,
    outcomes: Sequence[Outcome],
    updates: Sequence[Outcome],
    now: float,
) -> int:
    delivered_state = MessageState.DELIVERED
    delivered = [o.event_id for o in updates if o.state == delivered_state]
    if delivered:
        conn.exec_driver_sql(_sqlite.DROP_CHUNKS, (orjson.dumps(delivered).decode(), owner))
    result = conn.exec_driver_sql(
        _sqlite.FINISH,
        [
            (
                o.state,
                o.bucket,
                o.key,
                o.etag,
                o.version,
                o.error,
                o.error_kind,
                o.next_attempt_at if o.next_attempt_at is not None else now,
                o.finished_at if o.state == delivered_state else None,
                now,
                o.event_id,
                owner,
            )
            for o in updates
        ],
    )
    conn.exec_driver_sql(
        _sqlite.ATTEMPT,
        [(o.event_id, worker, o.started_at, o.finished_at, o.state, o.error) for o in outcomes],
    )
    return int(result.rowcount or 0)
