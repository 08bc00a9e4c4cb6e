"""Big writes on SQLite in short transactions, so that one project never holds the write
lock for long (issue 13, SPEC §7 "Fair share").

SQLite writes one transaction at a time. Written in one transaction, a batch of 10,000
messages held the lock for ~0.4 s of CPU (1-2 s of wall time under load), and every other
project's one-message POST waited that long: B's POST p99 was 2.1 s while A posted 8 MiB
batches. So on SQLite a batch of more than `ROWS_PER_TRANSACTION` messages is written in
three steps, each step's transactions short:

1. **stage**: the rows go into ``staged_messages`` (no secondary indexes; nothing reads it
   but this module), a few hundred per transaction, under one ``ingest_batches`` row;
2. **commit**: one update of that row (``committed_at``) — from here the batch is accepted,
   all of it: the caller's own writes that belong to the acceptance (`on_commit`) go into
   this transaction;
3. **move**: ``INSERT INTO messages … SELECT … FROM staged_messages`` and the matching
   delete, a few hundred rows per transaction, all inside SQLite.

The caller answers 202 after the move, so every event id it returns can be looked up. If
the writer dies after the commit, `recover` (every process runs it at start and once a
minute) moves what is left: a committed batch is never lost. If it dies before, `recover`
deletes the staged rows once the batch has not been written to for
`ABANDONED_AFTER_SECONDS`: nothing of an unanswered batch is delivered. A large body's
chunks are written the same way, a few per transaction; its ``messages`` row, which makes
them reachable, is the commit.

A move can run twice at once (the writer and a recovering process): each of its
transactions deletes the staged rows it copied, so a second copy finds none of them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update

from s3dest.store import queue
from s3dest.store.engine import transaction, unsynced_transaction
from s3dest.store.tables import ingest_batches, message_chunks, messages, staged_messages

# Rows per transaction: ~10-20 ms of SQLite's time on an idle core.
ROWS_PER_TRANSACTION = 500
# A large body's chunks per transaction (1 MiB each).
CHUNKS_PER_TRANSACTION = 4
# After each of its transactions a big write pauses this share of the transaction's time
# (at least MIN_PAUSE_SECONDS), so that other writers get their turns (`_turn`).
PAUSE_SHARE = 0.2
MIN_PAUSE_SECONDS = 0.002
# An uncommitted batch untouched this long lost its writer (a live writer stages its rows
# back to back, after the whole batch was checked).
ABANDONED_AFTER_SECONDS = 600.0

OnCommit = Callable[[Connection], None]

_COLUMNS = ", ".join(c.name for c in messages.columns)
_MOVE = (
    f"INSERT INTO messages ({_COLUMNS}) SELECT {_COLUMNS} FROM staged_messages"
    " WHERE batch_id = ? AND seq >= ? AND seq < ?"
)
_DROP = "DELETE FROM staged_messages WHERE batch_id = ? AND seq >= ? AND seq < ?"


def staged(engine: Engine) -> bool:
    """Whether big writes are staged here: only SQLite has one write lock for everyone."""
    return engine.dialect.name == "sqlite"


def enqueue_staged(
    engine: Engine,
    project_id: str,
    chunks: Iterable[Sequence[dict[str, Any]]],
    *,
    on_commit: OnCommit | None = None,
) -> None:
    """Make a batch durable, all or none, and visible (see the module)."""
    batch_id = str(uuid.uuid4())
    seq = 0
    for part in _parts(chunks, ROWS_PER_TRANSACTION):
        names = queue.enqueue_columns(part[0])
        statement = queue.sqlite_insert_statement("staged_messages", ("batch_id", "seq", *names))
        # Built before the transaction: the lock is held for SQLite's work only.
        params = [
            (batch_id, seq + i, *values) for i, values in enumerate(queue.row_values(part, names))
        ]
        with _turn(), unsynced_transaction(engine) as conn:
            _touch(conn, batch_id, project_id, first=seq == 0)
            conn.exec_driver_sql(statement, params)
        seq += len(part)
    with transaction(engine) as conn:
        conn.execute(
            update(ingest_batches)
            .where(ingest_batches.c.id == batch_id)
            .values(committed_at=time.time())
        )
        if on_commit is not None:
            on_commit(conn)
    _move(engine, batch_id)


def enqueue_large_staged(
    engine: Engine,
    row: dict[str, Any],
    chunks: Iterable[bytes],
    *,
    on_commit: OnCommit | None = None,
) -> None:
    """One large message: its chunks a few per transaction, then its row (the commit)."""
    batch_id = str(uuid.uuid4())
    event_id = row["event_id"]
    with unsynced_transaction(engine) as conn:
        conn.execute(
            insert(ingest_batches).values(
                id=batch_id, project_id=row["project_id"], staged_at=time.time(), event_id=event_id
            )
        )
    seq = 0
    for group in _parts(([c] for c in chunks), CHUNKS_PER_TRANSACTION):
        with unsynced_transaction(engine) as conn:
            _touch(conn, batch_id, row["project_id"], first=False)
            conn.execute(
                insert(message_chunks),
                [
                    {"event_id": event_id, "seq": seq + i, "data": data}
                    for i, data in enumerate(group)
                ],
            )
        seq += len(group)
    with transaction(engine) as conn:
        queue.enqueue(conn, [row])
        conn.execute(delete(ingest_batches).where(ingest_batches.c.id == batch_id))
        if on_commit is not None:
            on_commit(conn)


def recover(engine: Engine, *, now: float | None = None) -> int:
    """Finish what dead writers left: move committed batches, drop abandoned ones.
    Returns how many batches it finished or dropped."""
    cutoff = (time.time() if now is None else now) - ABANDONED_AFTER_SECONDS
    with engine.connect() as conn:
        batches = conn.execute(
            select(ingest_batches.c.id, ingest_batches.c.committed_at, ingest_batches.c.event_id)
            .where(
                (ingest_batches.c.committed_at.is_not(None)) | (ingest_batches.c.staged_at < cutoff)
            )
            .limit(1000)
        ).all()
    for batch in batches:
        if batch.committed_at is not None:
            _move(engine, batch.id)
        else:
            _drop(engine, batch.id, batch.event_id)
    return len(batches)


@contextmanager
def _turn() -> Iterator[None]:
    """One of a big write's transactions, then a pause of `PAUSE_SHARE` of its length.
    Another writer waiting for the lock polls for it (SQLite's busy handler sleeps 1 ms,
    then 2, 5, 10… up to 100 ms between tries): back to back, these transactions would
    leave it gaps of microseconds, and it would wait for all of them."""
    started = time.monotonic()
    yield
    time.sleep(max(MIN_PAUSE_SECONDS, PAUSE_SHARE * (time.monotonic() - started)))


def _touch(conn: Connection, batch_id: str, project_id: str, *, first: bool) -> None:
    if first:
        conn.execute(
            insert(ingest_batches).values(id=batch_id, project_id=project_id, staged_at=time.time())
        )
    else:
        conn.execute(
            update(ingest_batches)
            .where(ingest_batches.c.id == batch_id)
            .values(staged_at=time.time())
        )


def _move(engine: Engine, batch_id: str) -> None:
    while True:
        with _turn(), unsynced_transaction(engine) as conn:
            low = _lowest_seq(conn, batch_id)
            if low is None:
                conn.execute(delete(ingest_batches).where(ingest_batches.c.id == batch_id))
                return
            window = (batch_id, low, low + ROWS_PER_TRANSACTION)
            conn.exec_driver_sql(_MOVE, window)
            conn.exec_driver_sql(_DROP, window)


def _drop(engine: Engine, batch_id: str, event_id: str | None) -> None:
    while True:
        with transaction(engine) as conn:
            low = _lowest_seq(conn, batch_id)
            if low is None:
                break
            conn.exec_driver_sql(_DROP, (batch_id, low, low + ROWS_PER_TRANSACTION))
    if event_id is not None:
        while True:
            with transaction(engine) as conn:
                seqs = (
                    conn.execute(
                        select(message_chunks.c.seq)
                        .where(message_chunks.c.event_id == event_id)
                        .order_by(message_chunks.c.seq)
                        .limit(CHUNKS_PER_TRANSACTION)
                    )
                    .scalars()
                    .all()
                )
                if not seqs:
                    break
                conn.execute(
                    delete(message_chunks).where(
                        message_chunks.c.event_id == event_id, message_chunks.c.seq.in_(seqs)
                    )
                )
    with transaction(engine) as conn:
        conn.execute(delete(ingest_batches).where(ingest_batches.c.id == batch_id))


def _lowest_seq(conn: Connection, batch_id: str) -> int | None:
    low: int | None = conn.execute(
        select(staged_messages.c.seq)
        .where(staged_messages.c.batch_id == batch_id)
        .order_by(staged_messages.c.seq)
        .limit(1)
    ).scalar_one_or_none()
    return low


def _parts(chunks: Iterable[Sequence[Any]], size: int) -> Iterator[Sequence[Any]]:
    """The items of `chunks`, regrouped `size` at a time (the last group may be smaller)."""
    group: list[Any] = []
    for chunk in chunks:
        for item in chunk:
            group.append(item)
            if len(group) >= size:
                yield group
                group = []
    if group:
        yield group
