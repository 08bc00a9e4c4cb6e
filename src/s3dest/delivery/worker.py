"""The worker loop: claim → build request → send → record, with bounded concurrency.

Retries, holds and parking are decided here from the error's classification; the sender
(`s3dest.s3.writer`) makes exactly one attempt. Database calls run in a thread so the
event loop keeps the PUTs flowing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from sqlalchemy import Engine

from s3dest import bodies, metrics
from s3dest.delivery.request import StoredMessage, build_request
from s3dest.delivery.retry import Backoff
from s3dest.destinations.runtime import DestinationRuntime, runtime_for
from s3dest.destinations.secrets import SecretBox
from s3dest.errors import DeliveryError, KeyTemplateInvalid, S3destError
from s3dest.s3.writer import ObjectRequest, put_object_async
from s3dest.settings import Settings
from s3dest.store import queue
from s3dest.store.destinations import DestinationRow, get_destination_by_id

log = logging.getLogger("s3dest.delivery")

_FLUSH_SECONDS = 0.1


@dataclass
class _DestinationState:
    runtime: DestinationRuntime
    semaphore: asyncio.Semaphore
    failed_at: float = 0.0  # local: when this worker last saw a destination error


@dataclass
class WorkerStats:
    delivered: int = 0
    retried: int = 0
    held: int = 0
    parked: int = 0
    attempts: list[float] = field(default_factory=list)


class Worker:
    def __init__(self, engine: Engine, settings: Settings, box: SecretBox) -> None:
        self.engine = engine
        self.settings = settings
        self.box = box
        bodies.limit_malloc_arenas()  # streamed uploads in bounded memory, see there
        self.name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.retry = Backoff(settings.retry_base_seconds, settings.retry_max_seconds)
        self.probe = Backoff(settings.probe_base_seconds, settings.probe_max_seconds)
        self.stats = WorkerStats()
        self._global = asyncio.Semaphore(settings.worker_concurrency)
        self._claim_at = max(1, settings.worker_concurrency // 4)
        self._destinations: dict[str, _DestinationState] = {}
        self._outcomes: list[queue.Outcome] = []
        self._in_flight: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._wakeup = asyncio.Event()
        # Leases this worker holds: event id → (its task, when the lease was last set).
        # Kept until the outcome is recorded; the lease keeper extends the old ones.
        self._leases: dict[str, tuple[asyncio.Task[None], float]] = {}
        # destination id → (diagnosis, S3 code, destination version that failed)
        self._pending_holds: dict[str, tuple[str, str | None, int]] = {}

    # ------------------------------------------------------------------ lifecycle
    def stop(self) -> None:
        self._stopping.set()
        self._wakeup.set()

    def wake(self) -> None:
        """Ingest calls this so new messages do not wait for the next poll."""
        self._wakeup.set()

    async def run(self) -> None:
        log.info("worker started", extra={"worker": self.name})
        last_reap = 0.0
        last_probe = 0.0
        flusher = asyncio.create_task(self._flush_loop())
        keeper = asyncio.create_task(self._lease_loop())
        try:
            while not self._stopping.is_set():
                free = self.settings.worker_concurrency - len(self._in_flight)
                try:
                    now = time.monotonic()
                    if now - last_reap > max(1.0, self.settings.lease_seconds / 4):
                        last_reap = now
                        await asyncio.to_thread(queue.reap_expired_leases, self.engine)
                    if now - last_probe > 1.0:
                        last_probe = now
                        await asyncio.to_thread(queue.release_probes, self.engine)
                    free = self.settings.worker_concurrency - len(self._in_flight)
                    claimed: list[queue.Claimed] = []
                    # Claim in batches: while PUTs are in flight, wait until a quarter of
                    # the slots are free, so a busy worker does not spend a transaction
                    # (and an fsync) on every message it finishes.
                    if free > 0 and (not self._in_flight or free >= self._claim_at):
                        claimed = await asyncio.to_thread(
                            queue.claim,
                            self.engine,
                            self.name,
                            min(free, self.settings.claim_batch),
                            self.settings.lease_seconds,
                        )
                    if claimed:
                        await self._refresh_destinations(claimed)
                        claim_time = time.time()
                        leased_at = time.monotonic()
                        for item in claimed:
                            task = asyncio.create_task(self._deliver(item, claim_time))
                            self._in_flight.add(task)
                            task.add_done_callback(self._finished)
                            task.add_done_callback(functools.partial(self._ended, item.event_id))
                            self._leases[item.event_id] = (task, leased_at)
                        if len(claimed) >= min(free, self.settings.claim_batch):
                            continue  # more is probably waiting
                except S3destError as exc:
                    # The database is away (restart, disk full): keep the process, retry.
                    log.error("queue unavailable", extra={"error": exc.message})
                    await asyncio.sleep(1.0)
                    continue
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._wakeup.wait(), timeout=self.settings.poll_interval_seconds
                    )
        finally:
            await self._shutdown(flusher, keeper)

    async def _shutdown(self, flusher: asyncio.Task[None], keeper: asyncio.Task[None]) -> None:
        # Graceful: let in-flight PUTs finish (bounded), then give back what is left.
        if self._in_flight:
            await asyncio.wait(self._in_flight, timeout=self.settings.request_timeout_seconds)
        unfinished = list(self._in_flight)
        for task in unfinished:
            task.cancel()
        if unfinished:
            await asyncio.wait(unfinished, timeout=5)
        keeper.cancel()
        flusher.cancel()
        for task in (keeper, flusher):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._flush()
        released = await asyncio.to_thread(queue.release, self.engine, self.name)
        log.info("worker stopped", extra={"worker": self.name, "released": released})

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        # Enough slots free for a batch claim: wake the loop (it sleeps until then).
        if self.settings.worker_concurrency - len(self._in_flight) >= self._claim_at:
            self._wakeup.set()

    def _ended(self, event_id: str, task: asyncio.Task[None]) -> None:
        # An attempt that ends without an outcome (cancelled) keeps no lease alive: the
        # message goes back to the queue when its lease expires.
        if task.cancelled() or task.exception() is not None:
            entry = self._leases.get(event_id)
            if entry is not None and entry[0] is task:
                del self._leases[event_id]

    # ------------------------------------------------------------------ leases
    async def _lease_loop(self) -> None:
        """Extend the leases of work that is taking long (a big upload, a slow S3).

        A lease is renewed once a third of it has passed, so a live worker never loses a
        message to the reaper; if the lease was lost anyway (the process stalled longer
        than the lease), the attempt is cancelled: another worker owns it now.
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
                task, _ = entry
                if event_id in held:
                    self._leases[event_id] = (task, now)
                elif not task.done():
                    # Lost (reaped while this process stalled): stop, do not race the new owner.
                    log.warning("lease lost", extra={"eventId": event_id, "worker": self.name})
                    task.cancel()
                    self._leases.pop(event_id, None)

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
                    state = _DestinationState(
                        runtime=runtime,
                        semaphore=asyncio.Semaphore(self.settings.per_destination_concurrency),
                    )
                    self._destinations[destination_id] = state
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

    # ------------------------------------------------------------------ delivery
    async def _deliver(self, item: queue.Claimed, claim_time: float) -> None:
        state = self._destinations.get(item.destination_id)
        started = time.time()
        if state is None:
            self._record_error(
                item,
                started,
                None,
                "message",
                "the destination could not be loaded (deleted, or its secret "
                "cannot be decrypted with the configured keys); replay once fixed",
                None,
            )
            return
        if state.failed_at > claim_time:
            # Claimed before this worker saw the destination fail: hold without a PUT.
            self._record_error(
                item,
                started,
                state,
                "destination",
                state.runtime.row.diagnosis or "destination failing",
                None,
                attempted=False,
            )
            return
        runtime = state.runtime
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
        key: str | None = None
        try:
            built = build_request(stored, runtime.template)
            key = built.key
            body = item.body if item.body is not None else self._chunks(item.event_id)
            async with self._global, state.semaphore:
                started = time.time()
                outcome = await put_object_async(
                    runtime.s3,
                    ObjectRequest(
                        key=key,
                        body=body,
                        metadata=built.metadata,
                        event_id=item.event_id,
                    ),
                )
        except DeliveryError as exc:
            self._record_error(
                item, started, state, exc.kind, exc.diagnosis, key, s3_code=exc.s3_code
            )
            return
        except Exception as exc:  # a bug or a foreign error: never lose the message
            log.exception("unexpected delivery error", extra={"eventId": item.event_id})
            self._record_error(
                item,
                started,
                state,
                "transient",
                f"unexpected error while writing ({type(exc).__name__}); retrying",
                key,
            )
            return
        finished = time.time()
        self._outcomes.append(
            queue.Outcome(
                event_id=item.event_id,
                state="delivered",
                started_at=started,
                finished_at=finished,
                bucket=runtime.s3.bucket,
                key=key,
                etag=outcome.etag,
                version=outcome.version,
                destination_id=item.destination_id,
                destination_version=runtime.row.version,
            )
        )
        self.stats.delivered += 1
        metrics.delivered.labels(item.destination_id).inc()
        metrics.latency.observe(max(0.0, finished - item.accepted_at))
        log.info(
            "delivered",
            extra={
                "eventId": item.event_id,
                "destinationId": item.destination_id,
                "bucket": runtime.s3.bucket,
                "key": key,
                "etag": outcome.etag,
                "attempt": item.attempts + 1,
                "latencyMs": round((finished - item.accepted_at) * 1000, 1),
            },
        )
        if len(self._outcomes) >= 256:
            self._wakeup.set()

    async def _chunks(self, event_id: str) -> AsyncIterator[bytes]:
        iterator = queue.read_chunks(self.engine, event_id)
        while True:
            chunk = await asyncio.to_thread(next, iterator, None)
            if chunk is None:
                return
            yield chunk

    def _record_error(
        self,
        item: queue.Claimed,
        started: float,
        state: _DestinationState | None,
        kind: str,
        reason: str,
        key: str | None,
        *,
        s3_code: str | None = None,
        attempted: bool = True,
    ) -> None:
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
            self.stats.retried += 1
            metrics.retried.labels(item.destination_id).inc()
        elif kind == "destination":
            outcome = queue.Outcome(
                item.event_id, "held", started, finished, bucket, key, error=reason, error_kind=kind
            )
            self.stats.held += 1
            metrics.held.labels(item.destination_id).inc()
            if state is not None and attempted:
                state.failed_at = finished
                self._pending_holds[item.destination_id] = (
                    reason,
                    s3_code,
                    state.runtime.row.version,
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
            self.stats.parked += 1
            metrics.parked.labels(item.destination_id).inc()
        self._outcomes.append(outcome)
        log.warning(
            outcome.state,
            extra={
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
        self._wakeup.set()

    # ------------------------------------------------------------------ recording
    async def _flush_loop(self) -> None:
        # Outcomes are written in batches, one transaction per round: often enough that a
        # delivery shows within a fraction of a second, rarely enough that a busy worker
        # writes tens of outcomes per commit rather than one or two.
        while True:
            await asyncio.sleep(_FLUSH_SECONDS)
            await self._flush()

    async def _flush(self) -> None:
        if not self._outcomes and not self._pending_holds:
            return
        outcomes, self._outcomes = self._outcomes, []
        holds, self._pending_holds = self._pending_holds, {}

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
            self._outcomes = outcomes + self._outcomes
            for key, value in holds.items():
                self._pending_holds.setdefault(key, value)
            await asyncio.sleep(0.5)
            return
        for outcome in outcomes:
            self._leases.pop(outcome.event_id, None)
