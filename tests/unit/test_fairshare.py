"""Fair share's bounds and its fair pool, one stage at a time (the end-to-end checks
against a running server are in tests/security/test_fair_share.py)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from s3dest.errors import TooBusy
from s3dest.fairshare import MIN_INGEST_CHARGE, Admission, FairPool, ProjectSlots
from s3dest.settings import Settings

MiB = 1024 * 1024


def _admission(**bounds: int) -> Admission:
    return Admission(Settings().with_overrides(**bounds))


def test_ingest_bytes_are_bounded_per_project_and_in_all() -> None:
    admission = _admission(project_ingest_bytes=4 * MiB, ingest_memory_bytes=6 * MiB)
    with admission.ingest("a", 3 * MiB):
        with pytest.raises(TooBusy) as refused, admission.ingest("a", 2 * MiB):
            pass
        assert refused.value.bound == "S3DEST_PROJECT_INGEST_BYTES"
        assert refused.value.retry_after >= 1
        with admission.ingest("b", 2 * MiB):  # another project: its own bound
            with pytest.raises(TooBusy) as full, admission.ingest("c", 2 * MiB):
                pass
            assert full.value.bound == "S3DEST_INGEST_MEMORY_BYTES"
            with admission.ingest("c", None):  # the minimum charge still fits
                pass
    with admission.ingest("a", 4 * MiB):  # all given back
        pass


def test_a_request_larger_than_a_bound_runs_alone() -> None:
    admission = _admission(project_ingest_bytes=1 * MiB, ingest_memory_bytes=2 * MiB)
    with admission.ingest("a", 10 * MiB) as big:
        big.grow(12 * MiB)  # a body without a length keeps growing: still alone
        with pytest.raises(TooBusy), admission.ingest("b", None):
            pass
    with admission.ingest("a", None) as small, admission.ingest("b", None):
        with pytest.raises(TooBusy):
            small.grow(3 * MiB)  # not alone any more
        assert small.charged == MIN_INGEST_CHARGE


def test_connection_tests_are_bounded_per_project_and_in_all() -> None:
    admission = _admission(project_connection_tests=2, connection_tests=3)
    with admission.connection_test("a"), admission.connection_test("a"):
        with pytest.raises(TooBusy) as mine, admission.connection_test("a"):
            pass
        assert mine.value.bound == "S3DEST_PROJECT_CONNECTION_TESTS"
        with admission.connection_test("b"):
            with pytest.raises(TooBusy) as all_, admission.connection_test("c"):
                pass
            assert all_.value.bound == "S3DEST_CONNECTION_TESTS"
    with admission.connection_test("a"), admission.connection_test("a"):
        pass


def test_project_slots_refuse_at_either_bound_and_give_back_once() -> None:
    """The per-project-and-total count that connection tests and DNS lookups share: a
    release called twice (a `finally` and a done callback) gives back one slot, not two."""
    slots = ProjectSlots(
        "widgets",
        per_project=2,
        total=3,
        project_bound="S3DEST_PROJECT_WIDGETS",
        total_bound="S3DEST_WIDGETS",
        advice="Wait for them",
        retry_after=7,
    )
    a1, a2 = slots.hold("a"), slots.hold("a")
    with pytest.raises(TooBusy) as mine:
        slots.hold("a")
    assert mine.value.bound == "S3DEST_PROJECT_WIDGETS" and mine.value.retry_after == 7
    assert str(mine.value).startswith("this project has 2 widgets running; at most 2 per")
    b = slots.hold("b")
    with pytest.raises(TooBusy) as all_:
        slots.hold("c")
    assert all_.value.bound == "S3DEST_WIDGETS"
    assert str(all_.value).startswith("the server runs 3 widgets; at most 3 at once")
    a1()
    a1()  # once only: "a" still has one running, so it may take just one more
    slots.hold("a")
    with pytest.raises(TooBusy):
        slots.hold("c")
    b()
    a2()
    slots.hold("c")


def test_the_fair_pool_never_lets_one_project_hold_every_thread() -> None:
    """Project A queues many slow tasks on a 3-thread pool; project B's task, submitted
    after them, starts at once (A may hold at most 2 threads), not after A's queue."""
    pool = FairPool(3, "test")
    release = threading.Event()
    started: dict[str, float] = {}

    def slow(name: str) -> str:
        started[name] = time.monotonic()
        release.wait(10)
        return name

    def quick(name: str) -> str:
        started[name] = time.monotonic()
        return name

    async def scenario() -> list[str]:
        a_tasks = [asyncio.ensure_future(pool.run("a", slow, f"a{i}")) for i in range(10)]
        await asyncio.sleep(0.2)
        began = time.monotonic()
        b = await asyncio.wait_for(pool.run("b", quick, "b"), 5)
        assert time.monotonic() - began < 1.0
        assert sum(1 for n in started if n.startswith("a")) == 2
        release.set()
        return [b, *await asyncio.gather(*a_tasks)]

    done = asyncio.run(scenario())
    assert done == ["b", *(f"a{i}" for i in range(10))]


def test_the_fair_pool_hands_errors_to_the_caller() -> None:
    pool = FairPool(2, "test")

    def boom() -> None:
        raise ValueError("boom")

    async def scenario() -> None:
        with pytest.raises(ValueError, match="boom"):
            await pool.run("a", boom)

    asyncio.run(scenario())
