"""Messages of a batch (SPEC §9) in the real queue, on SQLite and PostgreSQL: their delivery
records name the batch and line, and a message queued again by hand — a parked one
replayed, a delivered one re-delivered — leaves its batch and is written alone."""

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


def test_a_redelivered_leader_or_member_is_written_alone(engine: Engine) -> None:
    _sealed(engine, 3)
    _finish_leader(engine, "delivered", bucket="b", key="k/batch.jsonl.gz", batch=True)
    done = queue.redeliver(engine, PROJECT, event_ids=[LEADER, "e-00002"])
    assert done.queued == [LEADER, "e-00002"]
    columns = _batch_columns(engine)
    assert columns[LEADER] == ("queued", None, None)
    assert columns["e-00002"] == ("queued", None, None)
    # The member not re-delivered keeps the record of the object that holds it.
    assert columns["e-00001"] == ("delivered", LEADER, 1)
    claimed = {c.event_id: c for c in queue.claim(engine, "w2", 10, 30)}
    assert set(claimed) == {LEADER, "e-00002"}
    # Neither writes a batch: the leader's would be rebuilt from lines that moved on.
    assert not any(c.leads_batch or c.batch_leader for c in claimed.values())


def test_a_redelivery_by_filter_leaves_the_batch_too(engine: Engine) -> None:
    _sealed(engine, 2)
    _finish_leader(engine, "delivered", bucket="b", key="k/batch.jsonl.gz", batch=True)
    f = queue.DeliveryFilter(PROJECT, destination_id=DEST)
    assert sorted(queue.redeliver(engine, PROJECT, f=f).queued) == [LEADER, "e-00001"]
    assert set(_batch_columns(engine).values()) == {("queued", None, None)}


def test_a_replayed_parked_message_that_was_in_a_batch_is_written_alone(engine: Engine) -> None:
    # `finish` takes a leader parked by its batch's outcome out of the batch; one parked by
    # any other outcome (here, without `batch`) keeps its columns, which replay must clear.
    _sealed(engine, 3)
    _finish_leader(engine, "parked", error="the key has an empty segment")
    assert _batch_columns(engine)[LEADER] == ("parked", LEADER, 0)
    queue.replay_message(engine, PROJECT, LEADER)
    assert _batch_columns(engine)[LEADER] == ("queued", None, None)
    [claimed] = queue.claim(engine, "w2", 10, 30)
    assert claimed.event_id == LEADER and not claimed.leads_batch


def test_replaying_a_destination_takes_its_parked_messages_out_of_their_batch(
    engine: Engine,
) -> None:
    _sealed(engine, 3)
    with transaction(engine) as conn:  # a leader and a member parked, still in the batch
        conn.execute(
            update(messages)
            .where(messages.c.event_id.in_([LEADER, "e-00001"]))
            .values(state="parked", last_error="metadata too large")
        )
    assert queue.replay_destination(engine, DEST) == 2
    columns = _batch_columns(engine)
    assert columns[LEADER] == columns["e-00001"] == ("queued", None, None)
    assert columns["e-00002"] == ("batched", LEADER, 2)
