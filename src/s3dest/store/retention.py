"""Retention's SQL (SPEC §4): prune delivered messages' records in small batches, and give
the space back on SQLite.

Each batch is one short transaction: on SQLite the only writer holds the write lock for
it, so ingest and delivery wait for at most one batch (a few milliseconds for a few
hundred rows), and the caller pauses between batches to let them in. On PostgreSQL the
batch is read from the partial index `ix_messages_delivered` in delivery order and locked
with SKIP LOCKED: two pruning processes take different rows, and nothing in flight is
waited for. Held and parked messages are never in that index, so never pruned by age.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, select, text

from s3dest.store.engine import transaction
from s3dest.store.queue.states import MessageState
from s3dest.store.tables import (
    DELIVERED_SQL,
    attempts,
    message_chunks,
    messages,
    webhook_deliveries,
)

# Rows per transaction: small enough that a batch holds SQLite's write lock for a few
# milliseconds, large enough that pruning keeps up with 200 msg/s many times over.
BATCH_ROWS = 500
# Pages freed per `PRAGMA incremental_vacuum` step (4 MiB of 4 KiB pages), each its own
# short write.
VACUUM_STEP_PAGES = 1024
# How long the WAL checkpoint may wait for readers: it blocks new writers while it waits,
# so it gives up soon and is tried again after the next pruning round.
CHECKPOINT_WAIT_MS = 100
_BUSY_TIMEOUT_MS = 30_000  # the engine's (store.engine)

_DUE_SQLITE = (
    "SELECT event_id FROM messages INDEXED BY ix_messages_delivered "
    f"WHERE {DELIVERED_SQL} AND delivered_at < ? ORDER BY delivered_at LIMIT ?"
)
# The predicate as literals, so the planner sees it matches the partial index's.
_DUE_POSTGRES = text(
    f"SELECT event_id FROM messages WHERE {DELIVERED_SQL} AND delivered_at < :cutoff "
    "ORDER BY delivered_at LIMIT :limit FOR UPDATE SKIP LOCKED"
)


def prune_delivered(engine: Engine, *, older_than: float, limit: int = BATCH_ROWS) -> int:
    """Delete up to `limit` messages delivered before `older_than` (Unix seconds), with
    their attempts and any chunk left of their bodies; returns how many."""
    with transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            ids = list(
                conn.execute(_DUE_POSTGRES, {"cutoff": older_than, "limit": limit}).scalars()
            )
        else:
            ids = [r[0] for r in conn.exec_driver_sql(_DUE_SQLITE, (older_than, limit))]
        if not ids:
            return 0
        conn.execute(delete(attempts).where(attempts.c.event_id.in_(ids)))
        conn.execute(delete(message_chunks).where(message_chunks.c.event_id.in_(ids)))
        result = conn.execute(
            delete(messages).where(
                messages.c.event_id.in_(ids), messages.c.state == MessageState.DELIVERED
            )
        )
    return int(result.rowcount or 0)


def prune_webhook_deliveries(engine: Engine, *, older_than: float, limit: int = BATCH_ROWS) -> int:
    """Delete up to `limit` finished webhook deliveries (sent or given up) finished before
    `older_than`; pending ones stay."""
    with transaction(engine) as conn:
        ids = list(
            conn.execute(
                select(webhook_deliveries.c.id)
                .where(webhook_deliveries.c.finished_at < older_than)
                .order_by(webhook_deliveries.c.finished_at)
                .limit(limit)
            ).scalars()
        )
        if not ids:
            return 0
        result = conn.execute(delete(webhook_deliveries).where(webhook_deliveries.c.id.in_(ids)))
    return int(result.rowcount or 0)


@dataclass(frozen=True, slots=True)
class Reclaimed:
    pages_freed: int
    wal_truncated: bool


def reclaim_sqlite(engine: Engine, pause: float = 0.02) -> Reclaimed:
    """Give free pages back to the file system, in steps of VACUUM_STEP_PAGES (a short
    write each, `pause` seconds apart), then checkpoint and truncate the WAL. Does nothing
    on PostgreSQL, whose autovacuum makes deleted rows' space reusable (the files then stay
    the size of the live data plus the space of one retention window's churn)."""
    if engine.dialect.name != "sqlite":
        return Reclaimed(0, False)
    freed = 0
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        while True:
            (free,) = cursor.execute("PRAGMA freelist_count").fetchone()
            if not free:
                break
            step = min(int(free), VACUUM_STEP_PAGES)
            # executescript steps the pragma to its end: execute() stops after its first
            # step, which frees one page (measured: 2,765 pages took 8.9 s that way).
            cursor.executescript(f"PRAGMA incremental_vacuum({step});")
            (left,) = cursor.execute("PRAGMA freelist_count").fetchone()
            if left >= free:  # auto_vacuum is off (a database not yet converted)
                break
            freed += int(free) - int(left)
            time.sleep(pause)
        truncated = _checkpoint(cursor)
        cursor.close()
    finally:
        raw.close()
    return Reclaimed(freed, truncated)


def _checkpoint(cursor: Any) -> bool:
    """Copy the WAL into the database and truncate it; False when a reader kept it (then
    the next round tries again)."""
    cursor.execute(f"PRAGMA busy_timeout={CHECKPOINT_WAIT_MS}")
    try:
        busy, _log, _copied = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.OperationalError:
        return False
    finally:
        cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
    return not busy
