"""What ingest reads and writes: a project's routing, and the messages it accepts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from s3dest.store import queue, staging
from s3dest.store.engine import reading, transaction
from s3dest.store.staging import OnCommit
from s3dest.store.tables import destinations, manifests


@dataclass(frozen=True, slots=True)
class RoutingTarget:
    """A destination as routing sees it."""

    id: str
    name: str
    hold: bool  # failing or disabled: new messages wait with the others
    # SPEC §9: new messages wait for a batch (state `batching`) instead of being queued.
    batching: bool = False


def load_routing(engine: Engine, project_id: str) -> tuple[list[RoutingTarget], str | None]:
    """The project's destinations and its amp.yaml source (None without one), read in one
    transaction."""
    with reading(engine) as conn:
        rows = conn.execute(
            select(
                destinations.c.id,
                destinations.c.name,
                destinations.c.enabled,
                destinations.c.failing_since,
                destinations.c.batch,
            ).where(destinations.c.project_id == project_id)
        )
        targets = [
            RoutingTarget(
                id=r.id,
                name=r.name,
                hold=(not r.enabled) or r.failing_since is not None,
                batching=r.batch is not None,
            )
            for r in rows
        ]
        source = conn.execute(
            select(manifests.c.source).where(manifests.c.project_id == project_id)
        ).scalar_one_or_none()
    return targets, source


def enqueue(engine: Engine, rows: Sequence[dict[str, Any]]) -> None:
    """Make accepted messages durable, all or none, in one transaction."""
    with transaction(engine) as conn:
        queue.enqueue(conn, rows)


def enqueue_chunks(
    engine: Engine,
    project_id: str,
    chunks: Iterable[Sequence[dict[str, Any]]],
    *,
    count: int,
    on_commit: OnCommit | None = None,
) -> None:
    """Make a batch of `count` messages durable, all or none, inserted chunk by chunk (a
    chunk is read, e.g. from a spill file, only once the one before it is inserted). On
    SQLite a batch larger than one short transaction is staged (store.staging), so that
    no other project's write waits long for it; elsewhere it is one transaction.
    `on_commit` runs in the transaction that accepts the batch."""
    if count > staging.ROWS_PER_TRANSACTION and staging.staged(engine):
        staging.enqueue_staged(engine, project_id, chunks, on_commit=on_commit)
        return
    with transaction(engine) as conn:
        for rows in chunks:
            queue.enqueue(conn, rows)
        if on_commit is not None:
            on_commit(conn)


def enqueue_chunked(
    engine: Engine,
    row: dict[str, Any],
    chunks: Iterable[bytes],
    *,
    on_commit: OnCommit | None = None,
) -> None:
    """One large message: its body into ``message_chunks`` and its row, all or none (on
    SQLite the chunks a few per transaction, then the row: store.staging)."""
    if staging.staged(engine):
        staging.enqueue_large_staged(engine, row, chunks, on_commit=on_commit)
        return
    with transaction(engine) as conn:
        queue.write_chunks(conn, row["event_id"], chunks)
        queue.enqueue(conn, [row])
        if on_commit is not None:
            on_commit(conn)
