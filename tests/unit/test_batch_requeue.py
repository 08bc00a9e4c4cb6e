"""Messages of a batch (SPEC §9) in the real queue, on SQLite and PostgreSQL: their delivery
records name the batch and line."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from tests.unit.test_queue import DEST, PROJECT, _enqueue, _queue_engine, _row

from s3dest.batching import BatchSettings
from s3dest.store import queue
from s3dest.store.engine import transaction
from s3dest.store.tables import destinations, messages

LEADER = "e-00000"


@pytest.fixture
def engine(database_url: str | None, tmp_path: Path) -> Iterator[Engine]:
    engine = _queue_engine(database_url, tmp_path)
    yield engine
    engine.dispose()


def _sealed(engine: Engine, n: int) -> None:
    """One sealed batch of `n` messages of DEST, led by e-00000 (queued; the rest batched)."""
    with transaction(engine) as conn:
        conn.execute(
            update(destinations)
            .where(destinations.c.id == DEST)
            .values(batch=BatchSettings(max_messages=n).to_json())
        )
    _enqueue(engine, [_row(i, state="batching") for i in range(n)])
    assert queue.seal_due(engine) == 1


def _finish_leader(engine: Engine, state: str, **extra: Any) -> None:
    [leader] = queue.claim(engine, "w", 10, 30)
    assert leader.event_id == LEADER and leader.leads_batch
    now = time.time()
    outcome = queue.Outcome(LEADER, state, now, now, **extra)
    assert queue.finish(engine, "w", "w", [outcome]) == 1


def _batch_columns(engine: Engine) -> dict[str, tuple[str, str | None, int | None]]:
    with transaction(engine) as conn:
        rows = conn.execute(
            select(
                messages.c.event_id,
                messages.c.state,
                messages.c.batch_leader,
                messages.c.batch_line,
            )
        ).all()
    return {r.event_id: (r.state, r.batch_leader, r.batch_line) for r in rows}


def test_a_delivery_record_names_its_batch_and_line(engine: Engine) -> None:
    _sealed(engine, 3)
    waiting = queue.get_record(engine, PROJECT, "e-00002")
    assert waiting.state == "batched" and waiting.object_key is None
    assert (waiting.batch_leader, waiting.batch_line) == (LEADER, 2)
    _finish_leader(engine, "delivered", bucket="b", key="k/batch.jsonl.gz", etag='"t"', batch=True)
    _enqueue(engine, [_row(50)])  # a message of its own: no batch
    member = queue.get_record(engine, PROJECT, "e-00001")
    assert member.state == "delivered" and member.object_key == "k/batch.jsonl.gz"
    assert member.batch == {"id": LEADER, "line": 1}
    assert queue.get_record(engine, PROJECT, LEADER).batch == {"id": LEADER, "line": 0}
    # Lists and searches carry it too; a message written alone has none.
    listed = {r.event_id: r.batch for r in queue.list_records(engine, PROJECT)}
    assert listed == {
        "e-00050": None,
        LEADER: {"id": LEADER, "line": 0},
        "e-00001": {"id": LEADER, "line": 1},
        "e-00002": {"id": LEADER, "line": 2},
    }
    found = queue.search_records(engine, queue.DeliveryFilter(PROJECT, event_id="e-00002"))
    assert [r.batch for r in found] == [{"id": LEADER, "line": 2}]
