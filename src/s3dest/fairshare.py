"""Fair share between tenants in one process (SPEC §7): bounds, and where blocking work runs.

One tenant must not slow the others down. Two things did (issue 13, item 3): connection
tests and ingest ran on the threads that serve every request (Starlette's one pool, 40
threads), so forty tests against an endpoint that never answers — each waiting out its
timeout — left a simple GET of another project waiting 12 s; and nothing bounded what
one project had in flight. Here:

- `Admission` counts, per project and in all, the ingest bytes and the connection tests in
  flight; beyond a bound the request is refused at once (`TooBusy`: 429 with
  Retry-After), never queued behind the others.
- Blocking work runs on its own threads, never on the pool that serves other requests:
  connection tests on a pool sized by their global bound (so they never queue), ingest on
  a `FairPool`, which takes the projects with waiting work in turn and never gives one
  project all of its threads.

A request larger than a bound on its own is let in when nothing else is in flight under
that bound, so that memory in flight stays within max(bound, largest single request),
bounded in turn by S3DEST_MAX_REQUEST_BYTES.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

from s3dest.errors import TooBusy
from s3dest.settings import Settings

T = TypeVar("T")

#: Every ingest request is charged at least this (a request has fixed costs, and a
#: project must not get around the bytes bound with many tiny requests).
MIN_INGEST_CHARGE = 64 * 1024
INGEST_RETRY_AFTER = 1
TEST_RETRY_AFTER = 5


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):g} MiB"


class IngestTicket:
    """The bytes one ingest request holds; `grow` charges more as a body is read, and
    `release` (once, by whoever finishes with the request) gives them back."""

    def __init__(self, admission: Admission, project_id: str, charged: int) -> None:
        self._admission = admission
        self._project_id = project_id
        self.charged = charged
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._admission._give_ingest(self._project_id, self.charged)

    def grow(self, size: int) -> None:
        """The body has `size` bytes so far: charge them (TooBusy beyond a bound)."""
        if size > self.charged:
            self._admission._take_ingest(self._project_id, size - self.charged, grown=True)
            self.charged = size


class Admission:
    """Per-project and process-wide counts of the work in flight, against their bounds."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._ingest: dict[str, int] = {}
        self._ingest_total = 0
        self._requests: dict[str, int] = {}
        self._requests_total = 0
        self._tests = ProjectSlots(
            "connection tests",
            per_project=settings.project_connection_tests,
            total=settings.connection_tests,
            project_bound="S3DEST_PROJECT_CONNECTION_TESTS",
            total_bound="S3DEST_CONNECTION_TESTS",
            advice="Wait for them to finish",
            retry_after=TEST_RETRY_AFTER,
        )

    # ------------------------------------------------------------------ ingest bytes
    def hold_ingest(self, project_id: str, declared: int | None) -> IngestTicket:
        """Hold `declared` bytes (or the minimum charge) for one ingest request, until
        the ticket is released (TooBusy, at once, beyond a bound)."""
        charge = max(declared or 0, MIN_INGEST_CHARGE)
        self._take_ingest(project_id, charge, grown=False)
        return IngestTicket(self, project_id, charge)

    @contextmanager
    def ingest(self, project_id: str, declared: int | None) -> Iterator[IngestTicket]:
        ticket = self.hold_ingest(project_id, declared)
        try:
            yield ticket
        finally:
            ticket.release()

    def _take_ingest(self, project_id: str, size: int, *, grown: bool) -> None:
        settings = self.settings
        # Alone under a bound, a request may exceed it (else it could never run); one
        # whose body grows keeps the right it was let in with.
        others = 1 if grown else 0  # requests in flight besides this one, when alone
        with self._lock:
            mine = self._ingest.get(project_id, 0)
            alone = self._requests.get(project_id, 0) == others
            if mine + size > settings.project_ingest_bytes and not alone:
                raise TooBusy(
                    f"this project has {_mib(mine)} of ingest requests in flight; at most "
                    f"{_mib(settings.project_ingest_bytes)} per project at once "
                    "(S3DEST_PROJECT_INGEST_BYTES). Retry shortly, or send fewer or "
                    "smaller requests at once",
                    bound="S3DEST_PROJECT_INGEST_BYTES",
                    retry_after=INGEST_RETRY_AFTER,
                )
            total = self._ingest_total
            if total + size > settings.ingest_memory_bytes and self._requests_total != others:
                raise TooBusy(
                    f"the server has {_mib(total)} of ingest requests in flight; at most "
                    f"{_mib(settings.ingest_memory_bytes)} at once "
                    "(S3DEST_INGEST_MEMORY_BYTES). Retry shortly",
                    bound="S3DEST_INGEST_MEMORY_BYTES",
                    retry_after=INGEST_RETRY_AFTER,
                )
            self._ingest[project_id] = mine + size
            self._ingest_total = total + size
            if not grown:
                self._requests[project_id] = self._requests.get(project_id, 0) + 1
                self._requests_total += 1

    def _give_ingest(self, project_id: str, size: int) -> None:
        with self._lock:
            self._ingest_total -= size
            self._requests_total -= 1
            requests = self._requests[project_id] - 1
            if requests == 0:
                del self._requests[project_id], self._ingest[project_id]
            else:
                self._requests[project_id] = requests
                self._ingest[project_id] -= size

    # ------------------------------------------------------------------ connection tests
    @contextmanager
    def connection_test(self, project_id: str) -> Iterator[None]:
        release = self.hold_connection_test(project_id)
        try:
            yield
        finally:
            release()

    def hold_connection_test(self, project_id: str) -> Callable[[], None]:
        """Count one connection test of `project_id` (TooBusy beyond a bound); returns
        what gives it back."""
        return self._tests.hold(project_id)


class ProjectSlots:
    """Slots for one kind of blocking work, counted per project and in all: `hold` takes
    one or refuses at once (TooBusy naming the bound it hit), never queues, so a project at
    its bound cannot make the others wait. Connection tests (`Admission`) and save-time DNS
    lookups (s3/lookups.py) are both bounded so."""

    def __init__(
        self,
        what: str,
        *,
        per_project: int,
        total: int,
        project_bound: str,
        total_bound: str,
        advice: str,
        retry_after: int,
    ) -> None:
        self.what = what  # plural, as a refusal names it: "connection tests"
        self.per_project = per_project
        self.total = total
        self._project_bound = project_bound
        self._total_bound = total_bound
        self._advice = advice  # what a project at its own bound can do about it
        self._retry_after = retry_after
        self._lock = threading.Lock()
        self._running: dict[str, int] = {}
        self._running_total = 0

    def hold(self, project_id: str) -> Callable[[], None]:
        """Take a slot of `project_id` (TooBusy at a bound); returns what gives it back,
        which may be called more than once (from a `finally` and a callback, say)."""
        with self._lock:
            mine = self._running.get(project_id, 0)
            if mine >= self.per_project:
                raise TooBusy(
                    f"this project has {mine} {self.what} running; at most "
                    f"{self.per_project} per project at once ({self._project_bound}). "
                    f"{self._advice}",
                    bound=self._project_bound,
                    retry_after=self._retry_after,
                )
            if self._running_total >= self.total:
                raise TooBusy(
                    f"the server runs {self._running_total} {self.what}; at most "
                    f"{self.total} at once ({self._total_bound}). Retry shortly",
                    bound=self._total_bound,
                    retry_after=self._retry_after,
                )
            self._running[project_id] = mine + 1
            self._running_total += 1
        released = False

        def release() -> None:
            nonlocal released
            with self._lock:
                if released:
                    return
                released = True
                self._running_total -= 1
                if self._running[project_id] <= 1:
                    del self._running[project_id]
                else:
                    self._running[project_id] -= 1

        return release


class FairPool:
    """Threads for blocking work, shared fairly by projects: each free thread takes the
    next task of the next project in turn (not the oldest task overall), and a project
    never holds every thread, so another project's task starts when a thread frees up
    or at once, never behind a queue of someone else's."""

    def __init__(self, threads: int, name: str) -> None:
        self._threads = max(1, threads)
        self._per_project = max(1, self._threads - 1)
        self._name = name
        self._cv = threading.Condition()
        self._queues: dict[str, deque[Callable[[], None]]] = {}
        self._running: dict[str, int] = {}
        self._started = 0
        self._idle = 0

    async def run(self, project_id: str, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def settle(result: T | None, error: BaseException | None) -> None:
            if future.done():  # the request was cancelled (client gone)
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)  # type: ignore[arg-type]

        def task() -> None:
            try:
                result = fn(*args)
            except BaseException as exc:  # handed to the awaiting request
                loop.call_soon_threadsafe(settle, None, exc)
            else:
                loop.call_soon_threadsafe(settle, result, None)

        with self._cv:
            self._queues.setdefault(project_id, deque()).append(task)
            if self._idle == 0 and self._started < self._threads:
                self._started += 1
                threading.Thread(
                    target=self._work, name=f"s3dest-{self._name}-{self._started}", daemon=True
                ).start()
            self._cv.notify()
        return await future

    def _next(self) -> tuple[str, Callable[[], None]] | None:
        # Under the lock: the first project in turn that may run one more task.
        for project_id, queue in self._queues.items():
            if self._running.get(project_id, 0) < self._per_project:
                task = queue.popleft()
                del self._queues[project_id]
                if queue:  # to the back of the turn
                    self._queues[project_id] = queue
                return project_id, task
        return None

    def _work(self) -> None:
        while True:
            with self._cv:
                picked = self._next()
                while picked is None:
                    self._idle += 1
                    self._cv.wait()
                    self._idle -= 1
                    picked = self._next()
                project_id, task = picked
                self._running[project_id] = self._running.get(project_id, 0) + 1
            try:
                task()
            finally:
                with self._cv:
                    if self._running[project_id] <= 1:
                        del self._running[project_id]
                    else:
                        self._running[project_id] -= 1
                    self._cv.notify()


class FairShare:
    """What a serving process shares between tenants: the bounds and the threads."""

    def __init__(self, settings: Settings) -> None:
        self.admission = Admission(settings)
        self.ingest_pool = FairPool(settings.ingest_threads, "ingest")
        self._test_pool = ThreadPoolExecutor(
            max_workers=max(1, settings.connection_tests), thread_name_prefix="s3dest-test"
        )

    async def connection_test(self, project_id: str, fn: Callable[..., T], *args: Any) -> T:
        """Run one connection test on the tests' own threads, within its bounds (counted
        until the test ends, even if the request that asked for it has gone)."""
        release = self.admission.hold_connection_test(project_id)

        def run() -> T:
            try:
                return fn(*args)
            finally:
                release()

        return await asyncio.get_running_loop().run_in_executor(self._test_pool, run)
