"""The worker: claim → build request → send → record, with bounded concurrency.

One coordinator thread (the one that calls `Worker.run`) claims, dispatches, keeps leases
and flushes outcomes; a pool of sender threads makes the PUTs (`senders`). The coordinator
sleeps on an event until its next timer (poll, flush, lease keeper) or until ingest or a
sender signals it. Retries, holds and parking are decided by the policy from the error's
classification; the sender (`s3dest.s3.writer`) makes exactly one attempt.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid

from s3dest.delivery.broker import Broker, Sender
from s3dest.delivery.dispatch import Dispatcher
from s3dest.delivery.leases import Leases
from s3dest.delivery.outcomes import FLUSH_RETRY_SECONDS, FLUSH_SECONDS, Recorder
from s3dest.delivery.policy import Policy
from s3dest.delivery.senders import S3Sender, SenderPool
from s3dest.delivery.shared import Shared
from s3dest.destinations.secrets import SecretBox
from s3dest.errors import S3destError
from s3dest.ingest import bodies
from s3dest.s3.multipart import MultipartOptions
from s3dest.settings import Settings
from s3dest.store.queue import Claimed

log = logging.getLogger("s3dest.delivery")

# An idle worker polls the queue less and less often, up to this: each poll is a write
# transaction (measured: an idle `s3dest serve` used 4.5 % of a core polling every 50 ms).
# Ingest in the same process wakes the worker at once; a separate `s3dest worker` picks up
# new work within this long after a quiet spell, and retries fall due at most this late.
IDLE_POLL_MAX_SECONDS = 0.5
# After the queue could not be reached, the next claim waits this long.
QUEUE_RETRY_SECONDS = 1.0
# How often a worker seals batching destinations' due batches (SPEC §9) at most: a batch is
# sealed this late after it filled or its `maxSeconds` passed (one read of an index of the
# unsealed messages, empty unless a destination batches).
SEAL_SECONDS = 0.1
# While shutting down, how often to look whether the in-flight PUTs are done.
_DRAIN_POLL_SECONDS = 0.02


class Worker:
    def __init__(
        self,
        broker: Broker,
        settings: Settings,
        box: SecretBox,
        *,
        sender: Sender | None = None,
        policy: Policy | None = None,
    ) -> None:
        self.broker = broker
        self.settings = settings
        bodies.limit_malloc_arenas()  # streamed uploads in bounded memory, see there
        self.name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.policy = policy or Policy.from_settings(settings)
        # A claim costs about 1.5 ms of CPU on SQLite before its first row (transaction,
        # commit, fsync) and ~50 us per row: claim half the slots at a time, not a quarter.
        self.shared = Shared(
            settings.worker_concurrency,
            max(1, settings.worker_concurrency // 2),
            settings.per_project_concurrency,
        )
        self.leases = Leases(broker, self.shared, self.name, settings.lease_seconds)
        self.recorder = Recorder(broker, self.shared, self.policy, self.name)
        self.dispatcher = Dispatcher(broker, self.shared, box, settings)
        multipart = MultipartOptions(
            part_size=settings.multipart_part_bytes, part_delay=self.policy.retry.next_delay
        )
        self.senders = SenderPool(
            self.shared,
            sender or S3Sender(multipart),
            self.recorder,
            self.dispatcher.prepare,
            self.dispatcher.load_batch,
        )
        now = time.monotonic()
        self._last_reap = self._last_probe = self._last_seal = 0.0
        self._next_flush = now + FLUSH_SECONDS
        self._next_lease = now + self.leases.period
        self._queue_back_at = 0.0  # after a queue error, no claim before this (monotonic)

    # ------------------------------------------------------------------ lifecycle
    def stop(self) -> None:
        """Graceful: stop claiming, finish or give back in-flight work; `run` returns."""
        self.shared.stop()

    def wake(self) -> None:
        """Ingest calls this so new messages do not wait for the next poll."""
        self.shared.wake()

    def run(self) -> None:
        """Deliver until `stop()`, on the calling thread (the coordinator)."""
        log.info("worker started", extra={"worker": self.name})
        shared = self.shared
        now = time.monotonic()
        self._next_flush = now + FLUSH_SECONDS
        self._next_lease = now + self.leases.period
        poll_at = now
        try:
            while not shared.stopping:
                if time.monotonic() >= poll_at:
                    poll_at = self._poll()
                    if shared.stopping:
                        break
                self._timers()
                timeout = min(poll_at, self._next_flush, self._next_lease) - time.monotonic()
                if timeout > 0 and shared.wait(timeout):
                    # Woken (ingest, free slots, stop): claim now, unless the queue is away.
                    poll_at = max(min(poll_at, time.monotonic()), self._queue_back_at)
        finally:
            self._shutdown()

    def _poll_timeout(self) -> float:
        base = self.settings.poll_interval_seconds
        idle = self.shared.idle_polls
        if idle <= 1:
            return base
        return min(max(base, IDLE_POLL_MAX_SECONDS), base * (1 << min(idle - 1, 16)))

    def _poll(self) -> float:
        """One round: reap, release probes, claim and dispatch. Returns when (monotonic)
        to poll next."""
        settings = self.settings
        try:
            now = time.monotonic()
            if now - self._last_reap > max(1.0, settings.lease_seconds / 4):
                self._last_reap = now
                self.broker.reap_expired_leases()
            if now - self._last_probe > 1.0:
                self._last_probe = now
                self.broker.release_probes()
            if now - self._last_seal >= SEAL_SECONDS:
                self._last_seal = now
                self.broker.seal_batches()
            active = self.shared.active
            free = settings.worker_concurrency - active
            limit = min(free, settings.claim_batch)
            claimed: list[Claimed] = []
            # Claim in batches: while PUTs are in flight, wait until half of the slots are
            # free, so a busy worker does not spend a transaction (and an fsync) on every
            # message it finishes.
            excluded: list[str] = []
            if free > 0 and (active == 0 or free >= self.shared.claim_at):
                excluded = self.shared.excluded_projects()
                limit = min(limit, self.shared.project_room())
                claimed = self.broker.claim(
                    self.name, limit, settings.lease_seconds, exclude_projects=excluded
                )
            # With projects left out, an empty claim backs off as an idle one does: each
            # such claim passes over their backlog.
            self.shared.note_poll(idle=(active == 0 or bool(excluded)) and not claimed)
            if claimed:
                self._dispatch(claimed)
                if len(claimed) >= limit:
                    return time.monotonic()  # more is probably waiting
        except S3destError as exc:
            # The database is away (restart, disk full): keep the process, retry.
            log.error("queue unavailable", extra={"error": exc.message})
            self._queue_back_at = time.monotonic() + QUEUE_RETRY_SECONDS
            return self._queue_back_at
        return time.monotonic() + self._poll_timeout()

    def _dispatch(self, claimed: list[Claimed]) -> None:
        """Hand claimed messages to the sender threads, at most per_destination_concurrency
        of one destination at a time; the rest wait for that destination's next free slot.

        Waiting messages count against worker_concurrency, so a claim comes only once a
        half of the slots are free. (Claiming with the busy destinations excluded was
        tried: with one busy destination every finished PUT woke the loop into a claim that
        found nothing, 0.8-1.9 ms of CPU per message.)"""
        claimed, excess = self.shared.within_projects(claimed)
        if excess:
            # Beyond their project's bound in this worker: given back now, not held while
            # other projects wait (the next claims leave that project out).
            self.broker.release(self.name, [item.event_id for item in excess])
        if not claimed:
            return
        self.dispatcher.refresh(claimed)
        leased_at = time.monotonic()
        jobs = self.dispatcher.jobs(claimed)
        self.leases.add(jobs, leased_at)
        for job in self.shared.admit(jobs, self.settings.per_destination_concurrency):
            self.senders.submit(job)

    def _timers(self) -> None:
        """Flush outcomes and keep leases when their time has come."""
        now = time.monotonic()
        if now >= self._next_flush:
            # Outcomes are written in batches, one transaction per round: often enough that
            # a delivery shows within a fraction of a second, rarely enough that a busy
            # worker writes tens of outcomes per commit rather than one or two.
            written = self.recorder.flush(self.leases)
            pause = FLUSH_SECONDS if written else FLUSH_SECONDS + FLUSH_RETRY_SECONDS
            self._next_flush = time.monotonic() + pause
        if now >= self._next_lease:
            self.leases.keep()
            self._next_lease = time.monotonic() + self.leases.period

    def _shutdown(self) -> None:
        # Graceful: let in-flight PUTs finish (bounded), then give back what is left.
        deadline = time.monotonic() + self.settings.request_timeout_seconds
        while self.shared.active and time.monotonic() < deadline:
            self._timers()
            self.shared.wait(min(_DRAIN_POLL_SECONDS, deadline - time.monotonic()))
        # Jobs not started yet are given back below, not sent; a streamed upload stops at
        # its next chunk.
        self.shared.abandon(self.leases.jobs())
        self.senders.stop(deadline)
        self.recorder.flush(self.leases)
        released = self.broker.release(self.name)
        log.info("worker stopped", extra={"worker": self.name, "released": released})
