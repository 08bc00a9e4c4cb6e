"""Batches (SPEC §9): seal a batching destination's waiting messages into batches, read a
batch's lines, and let a batch's members follow their leader.

A message of a batching destination is stored in state `batching`. `seal_due` groups them,
oldest first (event ids are UUIDv7, so acceptance order), into batches of at most
`max_messages` messages and `max_bytes` of lines, once a batch is full or its oldest
message has waited `max_seconds`. Sealing fixes the membership in one transaction: the first
message becomes the batch's leader (`batch_leader` its own event id, line 0, state queued, or
held while the destination is failing, so its probe has something to try) and the others
`batched`, with the leader's id and their line. The leader is claimed, leased, retried,
held and reaped like any message; its PUT writes the whole batch, always the same lines to
the same key. When the leader is recorded delivered, its members are too, in the same
transaction (`follow_leaders`); when the leader alone is parked (its key or metadata cannot
be written), the others go back to `batching`, into another batch.

No message is in two batches and no batch is sealed twice, with any number of workers: on
SQLite the write lock serialises sealers; on PostgreSQL a sealer takes a per-destination
transaction-level advisory lock (a second one passes the destination by), and every update
is fenced on `state = 'batching'`, the whole seal rolled back if any row was taken meanwhile.
"""

from __future__ import annotations

import time
import zlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, func, select, text, update

from s3dest.batching import BatchSettings
from s3dest.store.engine import reading, transaction
from s3dest.store.queue.states import MessageState
from s3dest.store.tables import BATCHING_SQL, messages

# What takes a message out of its batch, to be written as an object of its own: a parked
# leader, a replay, a re-delivery (replay.py, search.py). Else a re-queued leader would write
# its whole batch again, with members that have gone on without it, and a member would be
# claimed carrying another message's batch.
OUT_OF_BATCH: dict[str, None] = {
    "batch_leader": None,
    "batch_line": None,
    "batch_compression": None,
}

# One seal round seals at most this many batches (each in its own transaction), and stops
# once it has sealed for this long, so that a worker's poll stays short: the round runs on
# the thread that claims every tenant's messages, and a batch of 4,000 messages takes
# ~0.15 s to seal on SQLite (measured with bench.batch_memory: a backlog of 24 such
# batches, sealed in one round, held another tenant's messages 4 s before their claim).
# The next round, a poll later, seals more; destinations take turns within a round.
MAX_SEALS_PER_ROUND = 20
SEAL_ROUND_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class Waiting:
    """A batching destination's unsealed messages, as one seal round sees them."""

    destination_id: str
    count: int
    size: int
    oldest_accepted_at: float
    settings: BatchSettings | None
    failing: bool  # or disabled: the leaders are sealed held


@dataclass(frozen=True, slots=True)
class BatchLine:
    event_id: str
    line: int
    event_time_ns: int
    body: bytes


class _Raced(Exception):
    """A row of the batch being sealed was taken meanwhile: the seal is rolled back."""


# Each batching destination's unsealed messages, summed. The state predicate is spelt as a
# literal, the partial index's own (tables.BATCHING_SQL): SQLite uses a partial index only
# for a literal, and a bound parameter made this a scan of every message, run ten times a
# second by every worker (found in a profile: 5 % of the worker's CPU with 10,000 rows).
_WAITING = (
    "SELECT m.destination_id, count(*), coalesce(sum(m.body_size), 0), min(m.accepted_at), "
    "d.batch, d.failing_since, d.enabled FROM messages AS m "
    f"JOIN destinations AS d ON d.id = m.destination_id WHERE m.{BATCHING_SQL} "
    "GROUP BY m.destination_id, d.batch, d.failing_since, d.enabled"
)


def waiting(engine: Engine) -> list[Waiting]:
    """Each destination with unsealed messages (one read of ix_messages_batching; nothing
    to read, at the cost of one index probe, unless a destination batches)."""
    with reading(engine) as conn:
        rows = conn.exec_driver_sql(_WAITING).all()
    return [
        Waiting(
            destination_id=r[0],
            count=int(r[1]),
            size=int(r[2]),
            oldest_accepted_at=float(r[3]),
            settings=BatchSettings.from_json(r[4]),
            # A disabled destination's leaders are held too, as its new messages are;
            # enabling it (an update) resumes them.
            failing=r[5] is not None or not r[6],
        )
        for r in rows
    ]


def due(w: Waiting, settings: BatchSettings, now: float) -> bool:
    """Whether `w` holds a batch to seal now: a full one, or one whose oldest has waited."""
    return (
        w.count >= settings.max_messages
        or w.size + w.count >= settings.max_bytes
        or now - w.oldest_accepted_at >= settings.max_seconds
    )


def seal_due(
    engine: Engine,
    now: float | None = None,
    *,
    round_seconds: float | None = None,
    turn: int = 0,
) -> int:
    """Seal batches that are due, one destination's after another's, until none is, or
    `round_seconds` are up (at least one is sealed; a worker's round passes
    SEAL_ROUND_SECONDS); returns how many were sealed. The destinations' turns start at
    the `turn`-th (modulo): a worker passes its round's number, so that over rounds each
    batching destination goes first in turn, not always the one with the oldest backlog."""
    now = time.time() if now is None else now
    started = time.monotonic()
    sealed = 0
    turns: deque[Waiting] = deque()
    for w in waiting(engine):
        if w.settings is None:
            # Batching was turned off: what waited is delivered one message per object.
            with transaction(engine) as conn:
                unbatch_waiting(conn, w.destination_id, now)
        else:
            turns.append(w)
    if turns:
        turns.rotate(-(turn % len(turns)))  # the `turn`-th destination goes first
    while turns and sealed < MAX_SEALS_PER_ROUND:
        w = turns.popleft()
        assert w.settings is not None
        if not due(w, w.settings, now):
            continue
        taken = _seal_one(engine, w.destination_id, w.settings, now, failing=w.failing)
        if taken is None:
            continue
        sealed += 1
        count, size = taken
        # The oldest of the rest is not known without a read; a partly sealed backlog's
        # rest is sealed by age on a later round (it is younger than the batch just sealed).
        rest = Waiting(w.destination_id, w.count - count, w.size - size, now, w.settings, w.failing)
        turns.append(rest)
        if round_seconds is not None and time.monotonic() - started >= round_seconds:
            break
    return sealed


def _lock_destination(conn: Connection, destination_id: str) -> bool:
    if conn.dialect.name != "postgresql":
        return True  # BEGIN IMMEDIATE: the only writer
    key = zlib.crc32(f"s3dest-batch:{destination_id}".encode()) - 2**31
    return bool(conn.execute(select(func.pg_try_advisory_xact_lock(key))).scalar_one())


def _seal_one(
    engine: Engine, destination_id: str, settings: BatchSettings, now: float, *, failing: bool
) -> tuple[int, int] | None:
    """Seal the destination's oldest waiting messages into one batch, if they are due (read
    again inside the transaction). Returns (messages, bytes) sealed, or None."""
    m = messages
    try:
        with transaction(engine) as conn:
            if not _lock_destination(conn, destination_id):
                return None  # another worker is sealing this destination
            rows = conn.execute(
                select(m.c.event_id, m.c.body_size, m.c.accepted_at)
                .where(m.c.destination_id == destination_id, text(BATCHING_SQL))
                .order_by(m.c.event_id)
                .limit(settings.max_messages)
            ).all()
            members = _within_bytes(rows, settings.max_bytes)
            full = len(members) < len(rows) or len(members) == settings.max_messages
            if not members or not (
                full or now - min(r.accepted_at for r in rows) >= settings.max_seconds
            ):
                return None
            leader = members[0][0]
            first = conn.execute(
                update(m)
                .where(m.c.event_id == leader, m.c.state == MessageState.BATCHING)
                .values(
                    state=MessageState.HELD if failing else MessageState.QUEUED,
                    batch_leader=leader,
                    batch_line=0,
                    batch_compression=settings.compression,
                    next_attempt_at=now,
                    updated_at=now,
                )
            )
            moved = first.rowcount or 0
            if len(members) > 1:
                rest = conn.exec_driver_sql(
                    _SEAL_MEMBER[conn.dialect.name == "postgresql"],
                    [
                        (leader, line, now, event_id)
                        for line, (event_id, _) in enumerate(members[1:], start=1)
                    ],
                )
                moved += rest.rowcount or 0
            if moved != len(members):
                raise _Raced
            return len(members), sum(size + 1 for _, size in members)
    except _Raced:
        return None


# Parameters: leader, line, now, event id (PostgreSQL's driver takes %s).
_SEAL_MEMBER = {
    False: (
        "UPDATE messages SET state = 'batched', batch_leader = ?, batch_line = ?, "
        "updated_at = ? WHERE event_id = ? AND state = 'batching'"
    ),
    True: (
        "UPDATE messages SET state = 'batched', batch_leader = %s, batch_line = %s, "
        "updated_at = %s WHERE event_id = %s AND state = 'batching'"
    ),
}


def _within_bytes(rows: Sequence[object], max_bytes: int) -> list[tuple[str, int]]:
    """The longest prefix whose lines (body and newline) fit in `max_bytes`; at least one."""
    taken: list[tuple[str, int]] = []
    total = 0
    for row in rows:
        event_id, size = row[0], int(row[1])  # type: ignore[index]
        if taken and total + size + 1 > max_bytes:
            break
        taken.append((event_id, size))
        total += size + 1
    return taken


def batch_size(engine: Engine, leader_id: str) -> tuple[int, int]:
    """(bytes, lines) of the batch `leader_id` leads: what building its object will hold
    in memory, known before its bodies are read."""
    m = messages
    with reading(engine) as conn:
        size, count = conn.execute(
            select(func.coalesce(func.sum(m.c.body_size), 0), func.count()).where(
                m.c.batch_leader == leader_id
            )
        ).one()
    return int(size), int(count)


def batch_lines(engine: Engine, leader_id: str) -> list[BatchLine]:
    """The batch's lines in order, the leader's first: always the same, so every attempt
    writes the same object."""
    m = messages
    with reading(engine) as conn:
        rows = conn.execute(
            select(m.c.event_id, m.c.batch_line, m.c.event_time_ns, m.c.body)
            .where(m.c.batch_leader == leader_id)
            .order_by(m.c.batch_line)
        ).all()
    return [
        BatchLine(r.event_id, int(r.batch_line), int(r.event_time_ns), bytes(r.body or b""))
        for r in rows
    ]


def follow_leaders(
    conn: Connection, delivered: Sequence[str], parked: Sequence[str], now: float
) -> None:
    """In the transaction that recorded the leaders: members of a delivered leader get its
    delivery record (bucket, key, ETag, version, time) with their own line; members of a
    parked leader wait for another batch. Only where the leader's row says so, so an
    outcome whose lease was lost (not recorded) moves nothing."""
    m = messages
    for leader_id in delivered:
        record = conn.execute(
            select(
                m.c.bucket, m.c.object_key, m.c.etag, m.c.version_id, m.c.attempts, m.c.delivered_at
            ).where(
                m.c.event_id == leader_id,
                m.c.state == MessageState.DELIVERED,
                m.c.batch_leader == leader_id,
            )
        ).first()
        if record is None:
            continue
        conn.execute(
            update(m)
            .where(m.c.batch_leader == leader_id, m.c.state == MessageState.BATCHED)
            .values(
                state=MessageState.DELIVERED,
                bucket=record.bucket,
                object_key=record.object_key,
                etag=record.etag,
                version_id=record.version_id,
                attempts=record.attempts,
                delivered_at=record.delivered_at,
                last_error=None,
                last_error_kind=None,
                updated_at=now,
            )
        )
    for leader_id in parked:
        # The parked leader is a message of its own again (a replay writes it alone); only
        # if it was parked here, as this batch's leader, do its members leave with it.
        left = conn.execute(
            update(m)
            .where(
                m.c.event_id == leader_id,
                m.c.state == MessageState.PARKED,
                m.c.batch_leader == leader_id,
            )
            .values(**OUT_OF_BATCH)
        ).rowcount
        if left:
            conn.execute(
                update(m)
                .where(m.c.batch_leader == leader_id, m.c.state == MessageState.BATCHED)
                .values(state=MessageState.BATCHING, updated_at=now, **OUT_OF_BATCH)
            )


def unbatch_waiting(conn: Connection, destination_id: str, now: float) -> None:
    """A destination no longer batches: its unsealed messages are queued one by one."""
    conn.execute(
        update(messages)
        .where(messages.c.destination_id == destination_id, text(BATCHING_SQL))
        .values(state=MessageState.QUEUED, next_attempt_at=now, updated_at=now)
    )
