"""Sealing batches (SPEC §9) in the real queue, on SQLite and PostgreSQL: membership fixed
in the database, bounded by count, bytes and age; leaders claimed like any message; members
following their leader; several sealers at once never put a message in two batches."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from tests.unit.test_queue import DEST, _enqueue, _queue_engine, _row

from s3dest.batching import BatchSettings
from s3dest.store import queue
from s3dest.store.engine import transaction
from s3dest.store.tables import destinations, messages


@pytest.fixture
def engine(database_url: str | None, tmp_path: Path) -> Iterator[Engine]:
    engine = _queue_engine(database_url, tmp_path)
    yield engine
    engine.dispose()


def _batching(engine: Engine, settings: BatchSettings | None, destination: str = DEST) -> None:
    with transaction(engine) as conn:
        conn.execute(
            update(destinations)
            .where(destinations.c.id == destination)
            .values(batch=settings.to_json() if settings else None)
        )


def _waiting(n: int, *, start: int = 0, body: bytes = b'{"data":{}}', **extra: Any) -> list[Any]:
    return [
        _row(i, state="batching", body=body, body_size=len(body), **extra)
        for i in range(start, start + n)
    ]


def _members(engine: Engine) -> list[Any]:
    with transaction(engine) as conn:
        return list(
            conn.execute(
                select(
                    messages.c.event_id,
                    messages.c.state,
                    messages.c.batch_leader,
                    messages.c.batch_line,
                ).order_by(messages.c.event_id)
            )
        )


def _batches(engine: Engine) -> dict[str, list[str]]:
    """leader → its members' event ids in line order."""
    rows = [r for r in _members(engine) if r.batch_leader is not None]
    out: dict[str, list[tuple[int, str]]] = {}
    for r in rows:
        out.setdefault(r.batch_leader, []).append((r.batch_line, r.event_id))
    return {leader: [e for _, e in sorted(lines)] for leader, lines in out.items()}


def test_full_batches_are_sealed_in_acceptance_order_and_the_rest_waits(engine: Engine) -> None:
    _batching(engine, BatchSettings(max_messages=500, max_seconds=3600))
    _enqueue(engine, _waiting(1200))
    assert queue.seal_due(engine) == 2
    batches = _batches(engine)
    assert sorted(len(v) for v in batches.values()) == [500, 500]
    ids = [f"e-{i:05d}" for i in range(1200)]
    assert batches == {ids[0]: ids[0:500], ids[500]: ids[500:1000]}
    states = Counter(r.state for r in _members(engine))
    assert states == {"batched": 998, "queued": 2, "batching": 200}
    # Sealing again seals nothing: the rest is neither full nor old.
    assert queue.seal_due(engine) == 0


def test_bytes_bound_a_batch_and_age_seals_a_partial_one(engine: Engine) -> None:
    body = b'{"data":{"x":"' + b"a" * 86 + b'"}}'  # 100 bytes, 101 with its newline
    _batching(engine, BatchSettings(max_messages=500, max_bytes=1000, max_seconds=3600))
    _enqueue(engine, _waiting(20, body=body))
    assert queue.seal_due(engine) == 2  # 9 lines are 909 bytes; 10 would be 1,010
    assert sorted(len(v) for v in _batches(engine).values()) == [9, 9]
    # Two left: sealed once the oldest has waited maxSeconds.
    assert queue.seal_due(engine, now=time.time() + 3601) == 1
    assert sorted(len(v) for v in _batches(engine).values()) == [2, 9, 9]


@pytest.mark.parametrize("broken", [{"failing_since": 1.0}, {"enabled": False}])
def test_a_failing_or_disabled_destination_seals_its_leader_held(
    engine: Engine, broken: dict[str, Any]
) -> None:
    _batching(engine, BatchSettings(max_messages=10))
    with transaction(engine) as conn:
        conn.execute(update(destinations).where(destinations.c.id == DEST).values(**broken))
    _enqueue(engine, _waiting(10))
    assert queue.seal_due(engine) == 1
    leader = next(r for r in _members(engine) if r.batch_line == 0)
    # Held, so the failing destination's probe has a message to try (release_probes).
    assert leader.state == "held"


def test_turning_batching_off_queues_what_waited(engine: Engine) -> None:
    _batching(engine, None)
    _enqueue(engine, _waiting(7))
    assert queue.seal_due(engine) == 0
    assert {r.state for r in _members(engine)} == {"queued"}


def test_members_follow_a_delivered_leader(engine: Engine) -> None:
    _batching(engine, BatchSettings(max_messages=5))
    _enqueue(engine, _waiting(5))
    assert queue.seal_due(engine) == 1
    claimed = queue.claim(engine, "w", 10, 30)
    assert [c.event_id for c in claimed] == ["e-00000"]  # only the leader is claimable
    assert claimed[0].leads_batch
    lines = queue.batch_lines(engine, "e-00000")
    assert [(line.event_id, line.line) for line in lines] == [(f"e-{i:05d}", i) for i in range(5)]
    now = time.time()
    outcome = queue.Outcome(
        "e-00000", "delivered", now, now, bucket="b", key="k.jsonl.gz", etag='"e"', batch=True
    )
    assert queue.finish(engine, "w", "w", [outcome]) == 1
    with transaction(engine) as conn:
        rows = conn.execute(
            select(messages.c.state, messages.c.object_key, messages.c.etag, messages.c.batch_line)
        ).all()
    assert {(r.state, r.object_key, r.etag) for r in rows} == {("delivered", "k.jsonl.gz", '"e"')}
    assert sorted(r.batch_line for r in rows) == [0, 1, 2, 3, 4]


def test_a_parked_leader_parks_alone_and_its_members_join_another_batch(engine: Engine) -> None:
    _batching(engine, BatchSettings(max_messages=5))
    _enqueue(engine, _waiting(5))
    queue.seal_due(engine)
    queue.claim(engine, "w", 10, 30)
    now = time.time()
    parked = queue.Outcome("e-00000", "parked", now, now, error="bad key", batch=True)
    queue.finish(engine, "w", "w", [parked])
    states = {r.event_id: (r.state, r.batch_leader) for r in _members(engine)}
    assert states["e-00000"] == ("parked", None)
    assert {states[f"e-{i:05d}"] for i in range(1, 5)} == {("batching", None)}
    queue.seal_due(engine, now=time.time() + 3600)  # by age: the four form a new batch
    assert _batches(engine) == {"e-00001": [f"e-{i:05d}" for i in range(1, 5)]}


def test_a_lost_lease_moves_no_member(engine: Engine) -> None:
    _batching(engine, BatchSettings(max_messages=3))
    _enqueue(engine, _waiting(3))
    queue.seal_due(engine)
    queue.claim(engine, "w1", 10, 30)
    now = time.time()
    late = queue.Outcome("e-00000", "delivered", now, now, bucket="b", key="k", batch=True)
    assert queue.finish(engine, "someone-else", "w", [late]) == 0
    assert Counter(r.state for r in _members(engine)) == {"delivering": 1, "batched": 2}


@pytest.mark.timeout(300)
def test_concurrent_sealers_never_put_a_message_in_two_batches(engine: Engine) -> None:
    """Four threads (their own connections) seal the same destination's 3,000 messages at
    once, while more arrive: every message ends up in exactly one batch, every batch's lines
    are 0..n-1 with no gap, and every batch is full (none sealed twice or half)."""
    _batching(engine, BatchSettings(max_messages=100, max_seconds=3600))
    _enqueue(engine, _waiting(1000))
    errors: list[BaseException] = []
    stop = threading.Event()

    def seal() -> None:
        try:
            while not stop.is_set():
                queue.seal_due(engine)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
            raise

    threads = [threading.Thread(target=seal) for _ in range(4)]
    for t in threads:
        t.start()
    for start in (1000, 2000):
        _enqueue(engine, _waiting(1000, start=start))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(_batches(engine)) < 30:
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors
    batches = _batches(engine)
    assert len(batches) == 30
    everyone = [e for members in batches.values() for e in members]
    assert len(everyone) == len(set(everyone)) == 3000
    with transaction(engine) as conn:
        lines = conn.execute(
            select(messages.c.batch_leader, messages.c.batch_line).where(
                messages.c.batch_leader.is_not(None)
            )
        ).all()
    by_batch: dict[str, list[int]] = {}
    for batch_leader, line in lines:
        by_batch.setdefault(batch_leader, []).append(line)
    assert all(sorted(v) == list(range(100)) for v in by_batch.values())


def test_the_leader_keeps_the_compression_its_batch_was_sealed_with(engine: Engine) -> None:
    _batching(engine, BatchSettings(max_messages=3, max_seconds=3600, compression="zstd"))
    _enqueue(engine, _waiting(3))
    assert queue.seal_due(engine) == 1
    with transaction(engine) as conn:
        rows = dict(conn.execute(select(messages.c.event_id, messages.c.batch_compression)).all())
    assert rows == {"e-00000": "zstd", "e-00001": None, "e-00002": None}
    (claimed,) = queue.claim(engine, "w", 10, 60)
    assert claimed.leads_batch and claimed.batch_compression == "zstd"


def test_a_round_whose_time_is_up_seals_one_batch_and_destinations_take_turns(
    engine: Engine,
) -> None:
    settings = BatchSettings(max_messages=10, max_seconds=3600)
    _batching(engine, settings)
    _batching(engine, settings, "d-2")
    # DEST's backlog is the older: without turns, its three batches would go first.
    _enqueue(engine, _waiting(30) + _waiting(30, start=100, destination="d-2"))
    leaders: list[str] = []
    for turn in range(4):
        before = set(_batches(engine))
        assert queue.seal_due(engine, round_seconds=0.0, turn=turn) == 1
        (leader,) = set(_batches(engine)) - before
        leaders.append(leader)
    # Each round sealed one batch; the destinations took turns.
    assert leaders == ["e-00000", "e-00100", "e-00010", "e-00110"]
    # Without a time limit a round seals everything that is due.
    assert queue.seal_due(engine) == 2
    assert len(_batches(engine)) == 6
