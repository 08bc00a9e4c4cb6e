"""The worker loop: claim → build request → send → record, with bounded concurrency.

Retries, holds and parking are decided here from the error's classification; the sender
(`s3dest.s3.writer`) makes exactly one attempt.

The event loop only coordinates: it claims, keeps leases, flushes outcomes and holds. The
PUTs themselves run on a pool of sender threads with obstore's blocking call. Measured
against the moto server, an awaited `put_async` costs 0.70–0.80 ms of CPU per PUT and a
blocking `put` from a thread 0.44–0.62 ms: the difference is the hand-off between
obstore's runtime and the event loop on every PUT. The threads record their outcomes
themselves and wake the loop once per batch of free slots, not once per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue as thread_queue
import socket
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import Engine

from s3dest import logs, metrics
from s3dest.delivery.retry import Backoff
from s3dest.destinations.runtime import DestinationRuntime, runtime_for
from s3dest.destinations.secrets import SecretBox
from s3dest.errors import DeliveryError, KeyTemplateInvalid, S3destError
from s3dest.ingest import bodies
from s3dest.osthread import name_os_thread
from s3dest.s3.request import StoredMessage, build_request
from s3dest.s3.writer import ObjectRequest, PreparedPut, PutOutcome, prepare_put, send_put
from s3dest.settings import Settings
from s3dest.store import queue
from s3dest.store.destinations import DestinationRow, get_destination_by_id

log = logging.getLogger("s3dest.delivery")

# Outcomes are recorded in one transaction per round. A round costs ~1 ms of CPU before
# its first outcome: every 0.25 s keeps that under 0.03 ms per message at 150 msg/s, and a
# delivery still shows within a quarter of a second.
_FLUSH_SECONDS = 0.25

# An idle worker polls the queue less and less often, up to this: each poll is a write
# transaction (measured: an idle `s3dest serve` used 4.5 % of a core polling every 50 ms).
# Ingest in the same process wakes the worker at once; a separate `s3dest worker` picks up
# new work within this long after a quiet spell, and retries fall due at most this late.
_IDLE_POLL_MAX_SECONDS = 0.5


@dataclass(eq=False)
class _DestinationState:
    runtime: DestinationRuntime
    failed_at: float = 0.0  # local: when this worker last saw a destination error
    # Sender threads busy with this destination, and the jobs waiting for one of its slots
    # (both guarded by the worker's lock).
    active: int = 0
    waiting: deque[_Job] = field(default_factory=deque)


@dataclass(eq=False)
class _Job:
    """One claimed message on its way through a sender thread."""

    item: queue.Claimed
    state: _DestinationState | None
    claim_time: float
    # Set by the loop when the lease was lost (or at shutdown): do not start, do not record.
    cancelled: bool = False
    finished: bool = False
    # The request, rendered and checked at dispatch for the runtime it was built with (or
    # what was wrong with it); the sender thread only sends it.
    runtime: DestinationRuntime | None = None
    key: str | None = None
    prepared: PreparedPut | None = None
    problem: Exception | None = None


@dataclass(frozen=True, slots=True)
class _Delivered:
    """A successful PUT as its sender thread saw it; turned into its outcome, metrics and
    log line at the next flush (with `job.runtime`, the configuration it was sent with)."""

    job: _Job
    put: PutOutcome
    started: float
    finished: float


@dataclass(frozen=True, slots=True)
class _Report:
    """What one attempt tells `/metrics` and the log, applied at the next flush (from
    one thread, in one pass, instead of on every sender thread)."""

    state: str  # delivered | retrying | held | parked
    destination_id: str
    latency: float | None  # accept → delivered, for delivered messages
    line: logs.BatchEntry


_COUNTERS = {
    "delivered": metrics.delivered,
    "retrying": metrics.retried,
    "held": metrics.held,
    "parked": metrics.parked,
}


class _Cancelled(Exception):
    """A streamed upload stops between chunks: its lease went to another worker."""


class Worker:
    def __init__(self, engine: Engine, settings: Settings, box: SecretBox) -> None:
        self.engine = engine
        self.settings = settings
        self.box = box
        bodies.limit_malloc_arenas()  # streamed uploads in bounded memory, see there
        self.name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.retry = Backoff(settings.retry_base_seconds, settings.retry_max_seconds)
        self.probe = Backoff(settings.probe_base_seconds, settings.probe_max_seconds)
        # A claim costs about 1.5 ms of CPU on SQLite before its first row (transaction,
        # commit, fsync) and ~50 us per row: claim half the slots at a time, not a quarter.
        self._claim_at = max(1, settings.worker_concurrency // 2)
        self._destinations: dict[str, _DestinationState] = {}
        # Sender threads take jobs from one queue; started as work needs them, up to
        # worker_concurrency (a thread is busy for one PUT at a time).
        self._jobs: thread_queue.SimpleQueue[_Job | None] = thread_queue.SimpleQueue()
        self._senders: list[threading.Thread] = []
        self._idle_senders = 0
        # Shared with the sender threads, guarded by _lock: jobs submitted and not finished
        # (bounded by worker_concurrency), outcomes and holds waiting to be recorded.
        self._lock = threading.Lock()
        self._active = 0
        self._wake_pending = False
        self._abandon = False  # shutting down: queued jobs are given back, not started
        self._outcomes: list[queue.Outcome] = []
        self._delivered: list[_Delivered] = []
        self._reports: list[_Report] = []
        # destination id → (diagnosis, S3 code, destination version that failed)
        self._pending_holds: dict[str, tuple[str, str | None, int]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = asyncio.Event()
        self._wakeup = asyncio.Event()
        self._idle_polls = 0  # claims in a row that found nothing with nothing in flight
        # Leases this worker holds: event id → (its job, when the lease was last set). Kept
        # until the outcome is recorded; the lease keeper extends the old ones. Only the
        # event loop's thread touches it.
        self._leases: dict[str, tuple[_Job, float]] = {}

    # ------------------------------------------------------------------ lifecycle
    def stop(self) -> None:
        self._stopping.set()
        self._wakeup.set()

    def wake(self) -> None:
        """Ingest calls this so new messages do not wait for the next poll."""
        self._idle_polls = 0
        self._wakeup.set()

    async def run(self) -> None:
        log.info("worker started", extra={"worker": self.name})
        self._loop = asyncio.get_running_loop()
        last_reap = 0.0
        last_probe = 0.0
        flusher = asyncio.create_task(self._flush_loop())
        keeper = asyncio.create_task(self._lease_loop())
        try:
            while not self._stopping.is_set():
                try:
                    now = time.monotonic()
                    if now - last_reap > max(1.0, self.settings.lease_seconds / 4):
                        last_reap = now
                        await asyncio.to_thread(queue.reap_expired_leases, self.engine)
                    if now - last_probe > 1.0:
                        last_probe = now
                        await asyncio.to_thread(queue.release_probes, self.engine)
                    active = self._active
                    free = self.settings.worker_concurrency - active
                    claimed: list[queue.Claimed] = []
                    # Claim in batches: while PUTs are in flight, wait until half of the
                    # slots are free, so a busy worker does not spend a transaction (and an
                    # fsync) on every message it finishes.
                    if free > 0 and (active == 0 or free >= self._claim_at):
                        claimed = await asyncio.to_thread(
                            queue.claim,
                            self.engine,
                            self.name,
                            min(free, self.settings.claim_batch),
                            self.settings.lease_seconds,
                        )
                    if active == 0 and not claimed:
                        self._idle_polls += 1
                    else:
                        self._idle_polls = 0
                    if claimed:
                        await self._refresh_destinations(claimed)
                        self._dispatch(claimed)
                        if len(claimed) >= min(free, self.settings.claim_batch):
                            continue  # more is probably waiting
                except S3destError as exc:
                    # The database is away (restart, disk full): keep the process, retry.
                    log.error("queue unavailable", extra={"error": exc.message})
                    await asyncio.sleep(1.0)
                    continue
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), timeout=self._poll_timeout())
        finally:
            await self._shutdown(flusher, keeper)

    def _poll_timeout(self) -> float:
        base = self.settings.poll_interval_seconds
        if self._idle_polls <= 1:
            return base
        return min(max(base, _IDLE_POLL_MAX_SECONDS), base * (1 << min(self._idle_polls - 1, 16)))

    async def _shutdown(self, flusher: asyncio.Task[None], keeper: asyncio.Task[None]) -> None:
        # Graceful: let in-flight PUTs finish (bounded), then give back what is left.
        deadline = time.monotonic() + self.settings.request_timeout_seconds
        while self._active and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        with self._lock:
            self._abandon = True  # jobs not started yet are released below, not sent
        for job, _ in self._leases.values():
            job.cancelled = True  # a streamed upload stops at its next chunk
        for _ in self._senders:
            self._jobs.put(None)  # each sender ends when it takes one
        keeper.cancel()
        flusher.cancel()
        for task in (keeper, flusher):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._flush()
        released = await asyncio.to_thread(queue.release, self.engine, self.name)
        log.info("worker stopped", extra={"worker": self.name, "released": released})

    def _wake_from_thread(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(self._woken)

    def _woken(self) -> None:
        with self._lock:
            self._wake_pending = False
        self._wakeup.set()

    # ------------------------------------------------------------------ leases
    async def _lease_loop(self) -> None:
        """Extend the leases of work that is taking long (a big upload, a slow S3).

        A lease is renewed once a third of it has passed, so a live worker never loses a
        message to the reaper; if the lease was lost anyway (the process stalled longer
        than the lease), the attempt is cancelled: another worker owns it now. A job not
        started yet is never started; a streamed upload stops at its next chunk; a small
        PUT already on the wire completes, and its outcome is not recorded.
        """
        lease = self.settings.lease_seconds
        period = max(0.05, lease / 6)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            due = [eid for eid, (_, at) in self._leases.items() if now - at >= lease / 3]
            if not due:
                continue
            try:
                held = await asyncio.to_thread(
                    queue.extend_leases, self.engine, self.name, due, lease
                )
            except S3destError as exc:
                log.error("cannot extend leases", extra={"error": exc.message})
                continue
            for event_id in due:
                entry = self._leases.get(event_id)
                if entry is None:
                    continue
                job, _ = entry
                if event_id in held:
                    self._leases[event_id] = (job, now)
                elif not job.finished:
                    # Lost (reaped while this process stalled): stop, do not race the new owner.
                    log.warning("lease lost", extra={"eventId": event_id, "worker": self.name})
                    job.cancelled = True
                    self._leases.pop(event_id, None)

    def _forget_lease(self, job: _Job) -> None:
        # An attempt that ended without an outcome keeps no lease alive: the message goes
        # back to the queue when its lease expires (or at release on shutdown).
        entry = self._leases.get(job.item.event_id)
        if entry is not None and entry[0] is job:
            del self._leases[job.item.event_id]

    # ------------------------------------------------------------------ destinations
    async def _refresh_destinations(self, claimed: list[queue.Claimed]) -> None:
        """(Re)build the client of each destination whose configuration changed.

        The versions come with the claim (same transaction), so an unchanged destination
        costs no query; a changed one (PATCH) is reloaded before its messages are sent.
        """
        current = {c.destination_id: c.destination_version for c in claimed}
        for destination_id, version in current.items():
            state = self._destinations.get(destination_id)
            if version is None:  # deleted meanwhile
                self._destinations.pop(destination_id, None)
                continue
            if state is None or state.runtime.row.version != version:
                row = await asyncio.to_thread(get_destination_by_id, self.engine, destination_id)
                if row is None:
                    continue
                runtime = self._runtime(row)
                if runtime is None:
                    continue
                if state is None:
                    self._destinations[destination_id] = _DestinationState(runtime=runtime)
                else:
                    state.runtime = runtime
                    state.failed_at = 0.0

    def _runtime(self, row: DestinationRow) -> DestinationRuntime | None:
        try:
            return runtime_for(
                row, self.box, request_timeout_s=self.settings.request_timeout_seconds
            )
        except KeyTemplateInvalid:
            return None
        except S3destError as exc:  # e.g. secret encrypted with a key no longer configured
            log.error("destination unusable", extra={"destinationId": row.id, "error": exc.message})
            return None

    # ------------------------------------------------------------------ dispatch
    def _dispatch(self, claimed: list[queue.Claimed]) -> None:
        """Hand claimed messages to the sender threads, at most per_destination_concurrency
        of one destination at a time; the rest wait for that destination's next free slot.

        Waiting messages count against worker_concurrency, so a claim comes only once a
        half of the slots are free. (Claiming with the busy destinations excluded was
        tried: with one busy destination every finished PUT woke the loop into a claim that
        found nothing, 0.8-1.9 ms of CPU per message.)"""
        claim_time = time.time()
        leased_at = time.monotonic()
        limit = self.settings.per_destination_concurrency
        jobs = [
            _Job(
                item=item, state=self._destinations.get(item.destination_id), claim_time=claim_time
            )
            for item in claimed
        ]
        for job in jobs:
            self._prepare(job)
        start: list[_Job] = []
        with self._lock:
            for job in jobs:
                item, state = job.item, job.state
                self._leases[item.event_id] = (job, leased_at)
                self._active += 1
                if state is not None and state.active >= limit:
                    state.waiting.append(job)
                    continue
                if state is not None:
                    state.active += 1
                start.append(job)
        for job in start:
            self._submit(job)

    def _prepare(self, job: _Job) -> None:
        """Render the key and metadata and check the request, with the destination's
        current runtime. Done for a whole claim in one pass on the loop's thread: measured
        in bench.pipeline, the same work cost ~130 us of CPU per message when each sender
        thread did it between two PUTs (cold caches after every wait), ~30 us in one pass."""
        item, state = job.item, job.state
        if state is None:
            return
        runtime = state.runtime
        job.runtime, job.key, job.prepared, job.problem = runtime, None, None, None
        stored = StoredMessage(
            event_id=item.event_id,
            project_id=item.project_id,
            destination_id=item.destination_id,
            event_time_ns=item.event_time_ns,
            connection_id=item.connection_id,
            topic=item.topic,
            body=item.body,
            envelope=item.envelope,
        )
        try:
            built = build_request(stored, runtime.template)
            job.key = built.key
            body = item.body if item.body is not None else self._chunks(job)
            job.prepared = prepare_put(
                runtime.s3,
                ObjectRequest(
                    key=built.key, body=body, metadata=built.metadata, event_id=item.event_id
                ),
            )
        except Exception as exc:  # raised again by the sender, which classifies and records it
            job.problem = exc

    def _submit(self, job: _Job) -> None:
        with self._lock:
            # A new sender when the jobs already waiting (this one included) outnumber the
            # idle senders, up to worker_concurrency threads.
            start = (
                self._jobs.qsize() + 1 > self._idle_senders
                and len(self._senders) < self.settings.worker_concurrency
            )
            if start:
                sender = threading.Thread(
                    target=self._sender, name=f"s3dest-put-{len(self._senders)}", daemon=True
                )
                self._senders.append(sender)
        if start:
            sender.start()
        self._jobs.put(job)

    def _sender(self) -> None:
        name_os_thread("s3dest-put")
        job: _Job | None = None
        while True:
            if job is None:
                with self._lock:
                    self._idle_senders += 1
                job = self._jobs.get()
                with self._lock:
                    self._idle_senders -= 1
                if job is None:
                    return
            # The destination's next waiting message runs on this thread at once: no
            # hand-off through the queue, no other thread woken.
            job = self._send(job)

    def _send(self, job: _Job) -> _Job | None:
        """Run in a sender thread: one attempt, its outcome recorded for the next flush.
        Returns the job that takes over this one's destination slot, if one is waiting."""
        recorded = False
        try:
            if not (job.cancelled or self._abandon):
                recorded = self._deliver(job)
        except Exception:  # a bug here must not kill the thread or lose the message
            log.exception("unexpected delivery error", extra={"eventId": job.item.event_id})
        return self._ended(job, recorded)

    def _ended(self, job: _Job, recorded: bool) -> _Job | None:
        job.finished = True
        state = job.state
        following: _Job | None = None
        with self._lock:
            self._active -= 1
            if state is not None:
                if state.waiting:
                    following = state.waiting.popleft()  # inherits the destination slot
                else:
                    state.active -= 1
            free = self.settings.worker_concurrency - self._active
            wake = not self._wake_pending and (free >= self._claim_at or self._active == 0)
            if wake:
                self._wake_pending = True
        if not recorded and self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._forget_lease, job)
        if wake:
            self._wake_from_thread()
        return following

    # ------------------------------------------------------------------ delivery
    def _deliver(self, job: _Job) -> bool:
        """One attempt; returns whether an outcome was recorded."""
        item, state = job.item, job.state
        started = time.time()
        if state is None:
            return self._record_error(
                job,
                started,
                "message",
                "the destination could not be loaded (deleted, or its secret "
                "cannot be decrypted with the configured keys); replay once fixed",
                None,
            )
        if state.failed_at > job.claim_time:
            # Claimed before this worker saw the destination fail: hold without a PUT.
            return self._record_error(
                job,
                started,
                "destination",
                state.runtime.row.diagnosis or "destination failing",
                None,
                attempted=False,
            )
        if job.runtime is not state.runtime:
            self._prepare(job)  # the destination was changed (PATCH) while this job waited
        key = job.key
        try:
            if job.problem is not None:
                raise job.problem
            assert job.prepared is not None
            started = time.time()
            outcome = send_put(job.prepared)
        except DeliveryError as exc:
            if job.cancelled:
                return False
            return self._record_error(
                job, started, exc.kind, exc.diagnosis, key, s3_code=exc.s3_code
            )
        except Exception as exc:  # a bug or a foreign error: never lose the message
            if job.cancelled:
                return False
            log.exception("unexpected delivery error", extra={"eventId": item.event_id})
            return self._record_error(
                job,
                started,
                "transient",
                f"unexpected error while writing ({type(exc).__name__}); retrying",
                key,
            )
        if job.cancelled:
            return False  # the lease is another worker's now; it records its own attempt
        delivered = _Delivered(job, outcome, started, time.time())
        with self._lock:
            self._delivered.append(delivered)
        return True

    def _chunks(self, job: _Job) -> Iterator[bytes]:
        """A stored large body, read from the database as the upload needs it."""
        for chunk in queue.read_chunks(self.engine, job.item.event_id):
            if job.cancelled:
                raise _Cancelled(job.item.event_id)
            yield chunk

    def _record_error(
        self,
        job: _Job,
        started: float,
        kind: str,
        reason: str,
        key: str | None,
        *,
        s3_code: str | None = None,
        attempted: bool = True,
    ) -> bool:
        item, state = job.item, job.state
        finished = time.time()
        bucket = state.runtime.s3.bucket if state else None
        attempt = item.attempts + 1
        if kind == "transient":
            delay = self.retry.next_delay(attempt)
            outcome = queue.Outcome(
                item.event_id,
                "retrying",
                started,
                finished,
                bucket,
                key,
                error=reason,
                error_kind=kind,
                next_attempt_at=finished + delay,
            )
        elif kind == "destination":
            outcome = queue.Outcome(
                item.event_id, "held", started, finished, bucket, key, error=reason, error_kind=kind
            )
        else:
            outcome = queue.Outcome(
                item.event_id,
                "parked",
                started,
                finished,
                bucket,
                key,
                error=reason,
                error_kind=kind,
            )
        line = logs.BatchEntry(
            logging.WARNING,
            outcome.state,
            finished,
            {
                "eventId": item.event_id,
                "destinationId": item.destination_id,
                "bucket": bucket,
                "key": key,
                "attempt": attempt,
                "errorKind": kind,
                "error": reason,
                "s3Code": s3_code,
            },
        )
        report = _Report(outcome.state, item.destination_id, None, line)
        with self._lock:
            self._outcomes.append(outcome)
            self._reports.append(report)
            if kind == "destination" and state is not None and attempted:
                state.failed_at = finished
                self._pending_holds[item.destination_id] = (
                    reason,
                    s3_code,
                    state.runtime.row.version,
                )
        return True

    # ------------------------------------------------------------------ recording
    async def _flush_loop(self) -> None:
        # Outcomes are written in batches, one transaction per round: often enough that a
        # delivery shows within a fraction of a second, rarely enough that a busy worker
        # writes tens of outcomes per commit rather than one or two.
        while True:
            await asyncio.sleep(_FLUSH_SECONDS)
            await self._flush()

    @staticmethod
    def _delivery_records(
        delivered: list[_Delivered],
    ) -> tuple[list[queue.Outcome], list[_Report]]:
        outcomes: list[queue.Outcome] = []
        reports: list[_Report] = []
        for d in delivered:
            item, runtime, finished = d.job.item, d.job.runtime, d.finished
            assert runtime is not None  # a job is only sent once prepared with a runtime
            bucket = runtime.s3.bucket
            outcomes.append(
                queue.Outcome(
                    event_id=item.event_id,
                    state="delivered",
                    started_at=d.started,
                    finished_at=finished,
                    bucket=bucket,
                    key=d.job.key,
                    etag=d.put.etag,
                    version=d.put.version,
                    destination_id=item.destination_id,
                    destination_version=runtime.row.version,
                )
            )
            latency = max(0.0, finished - item.accepted_at)
            line = logs.BatchEntry(
                logging.INFO,
                "delivered",
                finished,
                {
                    "eventId": item.event_id,
                    "destinationId": item.destination_id,
                    "bucket": bucket,
                    "key": d.job.key,
                    "etag": d.put.etag,
                    "attempt": item.attempts + 1,
                    "latencyMs": round(latency * 1000, 1),
                },
            )
            reports.append(_Report("delivered", item.destination_id, latency, line))
        return outcomes, reports

    @staticmethod
    def _report(reports: list[_Report]) -> None:
        counts: Counter[tuple[str, str]] = Counter()
        for report in reports:
            counts[report.state, report.destination_id] += 1
            if report.latency is not None:
                metrics.latency.observe(report.latency)
        for (state, destination_id), count in counts.items():
            _COUNTERS[state].labels(destination_id).inc(count)
        logs.log_batch(log, [report.line for report in reports])

    async def _flush(self) -> None:
        with self._lock:
            if not self._outcomes and not self._delivered and not self._pending_holds:
                return
            outcomes, self._outcomes = self._outcomes, []
            delivered, self._delivered = self._delivered, []
            holds, self._pending_holds = self._pending_holds, {}
            reports, self._reports = self._reports, []
        delivered_outcomes, delivered_reports = self._delivery_records(delivered)
        outcomes += delivered_outcomes
        reports += delivered_reports
        # Counted and logged once, before the outcomes are written (as when the sender
        # threads did it): a state read back from the API is never ahead of /metrics.
        self._report(reports)

        def write() -> None:
            # A delivery on a failing destination clears the failure inside `finish`;
            # holds are applied after it, so a failure seen in the same round wins.
            queue.finish(self.engine, self.name, self.name, outcomes)
            for destination_id, (reason, code, version) in holds.items():
                queue.hold_destination(
                    self.engine,
                    destination_id,
                    diagnosis=reason,
                    code=code,
                    probe_delay=self.probe.next_delay,
                    version=version,
                )

        try:
            await asyncio.to_thread(write)
        except S3destError as exc:
            # The database is away: keep the outcomes and try again; leases protect us.
            log.error("cannot record outcomes", extra={"error": exc.message})
            with self._lock:
                self._outcomes = outcomes + self._outcomes
                for key, value in holds.items():
                    self._pending_holds.setdefault(key, value)
            await asyncio.sleep(0.5)
            return
        for outcome in outcomes:
            self._leases.pop(outcome.event_id, None)
