"""Batch objects (SPEC §9) are built on the sender threads, within a memory budget, with
the compression their batch was sealed with.

Before: the coordinator built every claimed leader's object at dispatch, all at once (a
claim takes up to 200: up to 64 MiB of lines and as much of object each, and seconds of
compression on the thread that claims and keeps every tenant's leases). Now a sender
builds its batch's object just before the PUT, once the process's batch memory has room
(`S3DEST_BATCH_MEMORY_BYTES`, a project at most half while another holds some).

A batch keeps the compression it was sealed with (migration 0015): it was the
destination's current one, so a `batch.compression` changed between two attempts wrote
the batch again at another key (`.jsonl.zst` beside `.jsonl.gz`), with other bytes.

The budget alone, then the real worker over the real queue (SQLite and PostgreSQL) with
the fake sender holding its PUTs, so what is built and in flight at once can be counted.
"""

from __future__ import annotations

import gzip
import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import Engine, update
from tests.support.fake_sender import FakeSender
from tests.unit.test_queue import DEST, _enqueue, _queue_engine, _row, _state

from s3dest.batching import BatchSettings, Compression
from s3dest.delivery.batch_memory import MemoryBudget
from s3dest.delivery.coordinator import Worker
from s3dest.destinations.runtime import secret_aad
from s3dest.destinations.secrets import SecretBox
from s3dest.settings import Settings
from s3dest.store import queue
from s3dest.store.broker import StoreBroker
from s3dest.store.engine import transaction
from s3dest.store.tables import destinations

# ---------------------------------------------------------------------------- the budget


def _acquire_in_thread(
    budget: MemoryBudget, project: str, size: int, cancel: threading.Event | None = None
) -> tuple[threading.Thread, list[bool]]:
    result: list[bool] = []
    stop = cancel or threading.Event()
    thread = threading.Thread(
        target=lambda: result.append(budget.acquire(project, size, stop.is_set)), daemon=True
    )
    thread.start()
    return thread, result


def test_a_request_waits_until_the_memory_it_needs_is_released() -> None:
    budget = MemoryBudget(100)
    assert budget.acquire("p", 40, lambda: False)
    assert budget.acquire("q", 40, lambda: False)
    thread, result = _acquire_in_thread(budget, "r", 40)
    thread.join(0.3)
    assert thread.is_alive() and result == []  # 120 > 100: waits
    budget.release("p", 40)
    thread.join(5)
    assert result == [True] and budget.held == 80


def test_one_project_holds_at_most_half_while_it_holds_any() -> None:
    budget = MemoryBudget(100)
    assert budget.acquire("p", 30, lambda: False)
    thread, result = _acquire_in_thread(budget, "p", 30)  # 60 > half of 100
    thread.join(0.3)
    assert thread.is_alive()
    assert budget.acquire("q", 40, lambda: False)  # another project is not held up by it
    budget.release("p", 30)
    thread.join(5)
    assert result == [True] and budget.held == 70


def test_a_batch_larger_than_the_budget_goes_alone() -> None:
    budget = MemoryBudget(100)
    assert budget.acquire("p", 500, lambda: False)  # nothing held: it goes
    thread, result = _acquire_in_thread(budget, "q", 1)
    thread.join(0.3)
    assert thread.is_alive()
    budget.release("p", 500)
    thread.join(5)
    assert result == [True]


def test_a_waiting_request_that_is_cancelled_takes_nothing() -> None:
    budget = MemoryBudget(100)
    assert budget.acquire("p", 100, lambda: False)
    cancel = threading.Event()
    thread, result = _acquire_in_thread(budget, "q", 10, cancel)
    cancel.set()
    thread.join(5)
    assert result == [False] and budget.held == 100


# ---------------------------------------------------------------------------- the worker

LINES = 50  # messages per batch
BODY = b'{"data":{"pad":"' + b"x" * 2000 + b'"}}'
# What one batch reserves: twice its lines' bytes and 256 bytes per line.
NEED = 2 * LINES * len(BODY) + 256 * LINES


class RecordingBroker(StoreBroker):
    """The real store, noting which thread reads a batch's lines."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.readers: list[str] = []

    def batch_lines(self, leader_id: str) -> Sequence[queue.BatchLine]:
        self.readers.append(threading.current_thread().name)
        return super().batch_lines(leader_id)


@pytest.fixture
def engine(database_url: str | None, tmp_path: Path) -> Iterator[Engine]:
    engine = _queue_engine(database_url, tmp_path)
    yield engine
    engine.dispose()


def _sealed_batches(
    engine: Engine, box: SecretBox, batches: int, compression: Compression = "gzip"
) -> list[str]:
    """`batches` sealed batches of LINES messages on DEST; returns their leaders."""
    with transaction(engine) as conn:
        conn.execute(
            update(destinations)
            .where(destinations.c.id == DEST)
            .values(
                endpoint_url="http://127.0.0.1:9",
                secret_access_key_enc=box.encrypt(
                    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                    aad=secret_aad(DEST, "secretAccessKey"),
                ),
                batch=BatchSettings(
                    max_messages=LINES, max_seconds=3600, compression=compression
                ).to_json(),
            )
        )
    rows = [
        _row(i, state="batching", body=BODY, body_size=len(BODY)) for i in range(batches * LINES)
    ]
    _enqueue(engine, rows)
    assert queue.seal_due(engine) == batches
    return [f"e-{i * LINES:05d}" for i in range(batches)]


def _worker(
    engine: Engine, tmp_path: Path, memory: int, box: SecretBox, sender: FakeSender
) -> tuple[Worker, RecordingBroker]:
    settings = Settings(
        data_dir=tmp_path / "data",
        worker_concurrency=16,
        per_destination_concurrency=8,
        per_project_concurrency=16,
        claim_batch=50,
        poll_interval_seconds=0.01,
        request_timeout_seconds=1.0,  # also how long a shutdown waits for PUTs in flight
        batch_memory_bytes=memory,
    )
    broker = RecordingBroker(engine)
    return Worker(broker, settings, box, sender=sender), broker


def _wait(condition: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.01)


def test_batches_are_built_on_sender_threads_within_the_memory_budget(
    engine: Engine, tmp_path: Path
) -> None:
    box = SecretBox([os.urandom(32)])
    leaders = _sealed_batches(engine, box, 6)
    sender = FakeSender()
    sender.gate = threading.Event()
    # Room for four batches; one project may hold half of it: two at a time.
    worker, broker = _worker(engine, tmp_path, 4 * NEED, box, sender)
    thread = threading.Thread(target=worker.run, name="s3dest-worker", daemon=True)
    thread.start()
    try:
        _wait(lambda: sender.in_flight == 2)
        time.sleep(0.5)  # were the bound not kept, the other four would be sent by now
        assert sender.in_flight == 2 and len(sender.started) == 2
        assert worker.dispatcher.memory.held == 2 * NEED
        sender.gate.set()
        _wait(lambda: all(_state(engine, e).state == "delivered" for e in leaders))
    finally:
        sender.gate.set()
        worker.stop()
        thread.join(15)
    assert sender.max_in_flight == 2
    assert worker.dispatcher.memory.held == 0
    # The coordinator never reads a batch's lines: its sender threads do.
    assert broker.readers and all(name.startswith("s3dest-put") for name in broker.readers)
    # Each object is its batch's lines, in order, as before.
    by_key = {s.key: s.body for s in sender.sent}
    assert len(by_key) == 6
    for body in by_key.values():
        assert gzip.decompress(body) == (BODY + b"\n") * LINES
    assert all(_state(engine, f"e-{i:05d}").state == "delivered" for i in range(6 * LINES))
    assert {s.event_id for s in sender.sent} == set(leaders)


def test_leaders_waiting_for_memory_are_given_back_at_shutdown(
    engine: Engine, tmp_path: Path
) -> None:
    box = SecretBox([os.urandom(32)])
    leaders = _sealed_batches(engine, box, 3)
    sender = FakeSender()
    sender.gate = threading.Event()  # S3 answers only once the test says so
    worker, _ = _worker(engine, tmp_path, 2 * NEED, box, sender)  # one batch at a time
    thread = threading.Thread(target=worker.run, name="s3dest-worker", daemon=True)
    thread.start()
    try:
        _wait(lambda: sender.in_flight == 1)
        time.sleep(0.3)
        assert len(sender.started) == 1  # the other two wait for memory
        worker.stop()  # the PUT in flight outlasts the drain: everything is given back
        thread.join(15)
        assert not thread.is_alive()
        assert {_state(engine, e).state for e in leaders} == {"queued"}
        assert {_state(engine, f"e-{i:05d}").state for i in range(3 * LINES)} - {"queued"} == {
            "batched"
        }
    finally:
        sender.gate.set()
    _wait(lambda: worker.dispatcher.memory.held == 0, timeout=5)
    assert len(sender.started) == 1  # the waiting ones never started


def test_a_sealed_batch_keeps_its_compression_when_the_destination_changes_it(
    engine: Engine, tmp_path: Path
) -> None:
    box = SecretBox([os.urandom(32)])
    (leader,) = _sealed_batches(engine, box, 1, compression="gzip")
    with transaction(engine) as conn:  # a PATCH after the seal, before the (next) attempt
        conn.execute(
            update(destinations)
            .where(destinations.c.id == DEST)
            .values(
                batch=BatchSettings(
                    max_messages=LINES, max_seconds=3600, compression="zstd"
                ).to_json(),
                version=destinations.c.version + 1,
            )
        )
    sender = FakeSender()
    worker, _ = _worker(engine, tmp_path, 4 * NEED, box, sender)
    thread = threading.Thread(target=worker.run, name="s3dest-worker", daemon=True)
    thread.start()
    try:
        _wait(lambda: _state(engine, leader).state == "delivered")
    finally:
        worker.stop()
        thread.join(15)
    (sent,) = sender.sent
    assert sent.key.endswith(".jsonl.gz"), sent.key
    assert gzip.decompress(sent.body) == (BODY + b"\n") * LINES
