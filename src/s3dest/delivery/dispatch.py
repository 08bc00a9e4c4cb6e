"""Dispatch: from claimed messages to jobs ready for the sender threads.

On the coordinator thread, for a whole claim at once: the destinations whose configuration
changed are reloaded, each message's key and metadata are rendered and its request is
checked, and the jobs are counted against the concurrency bounds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

from s3dest.batching import COMPRESSIONS, BatchSettings, Compression
from s3dest.delivery.batch_memory import MemoryBudget
from s3dest.delivery.broker import Broker
from s3dest.delivery.jobs import DestinationState, Job, PendingBatch
from s3dest.delivery.shared import Shared
from s3dest.destinations.runtime import DestinationRuntime, runtime_for
from s3dest.destinations.secrets import SecretBox
from s3dest.errors import KeyTemplateInvalid, MessageDeliveryError, S3destError
from s3dest.s3 import batch
from s3dest.s3.request import StoredMessage, build_request
from s3dest.s3.writer import ObjectRequest, prepare_put
from s3dest.settings import Settings
from s3dest.store.destinations import DestinationRow
from s3dest.store.queue import Claimed

log = logging.getLogger("s3dest.delivery")


# What one sealed line costs in memory beside its body while its batch is built (its row,
# its BatchLine and bytes objects).
_LINE_OVERHEAD_BYTES = 256


def _sealed_compression(item: Claimed, runtime: DestinationRuntime) -> Compression:
    """The compression the batch was sealed with (migration 0015), so that every attempt
    writes the same bytes to the same key; for a batch sealed before it, the destination's
    (or the default, once the destination stopped batching)."""
    sealed = item.batch_compression
    if sealed in COMPRESSIONS:
        return sealed
    return (runtime.row.batch or BatchSettings()).compression


def _nothing() -> None:
    """The release of a batch that took no memory."""


class Cancelled(Exception):
    """A streamed upload stops between chunks: its lease went to another worker."""


class Dispatcher:
    def __init__(self, broker: Broker, shared: Shared, box: SecretBox, settings: Settings) -> None:
        self.broker = broker
        self.shared = shared
        self.box = box
        self.settings = settings
        # Destinations seen in claims; only the coordinator thread reads or changes the map.
        self.destinations: dict[str, DestinationState] = {}
        self.memory = MemoryBudget(settings.batch_memory_bytes)

    def refresh(self, claimed: list[Claimed]) -> None:
        """(Re)build the client of each destination whose configuration changed.

        The versions come with the claim (same transaction), so an unchanged destination
        costs no query; a changed one (PATCH) is reloaded before its messages are sent.
        """
        current = {c.destination_id: c.destination_version for c in claimed}
        for destination_id, version in current.items():
            state = self.destinations.get(destination_id)
            if version is None:  # deleted meanwhile
                self.destinations.pop(destination_id, None)
                continue
            if state is None or self.shared.view(state)[0].row.version != version:
                row = self.broker.destination(destination_id)
                if row is None:
                    continue
                runtime = self._runtime(row)
                if runtime is None:
                    continue
                if state is None:
                    self.destinations[destination_id] = DestinationState(runtime=runtime)
                else:
                    self.shared.set_runtime(state, runtime)

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

    def jobs(self, claimed: list[Claimed]) -> list[Job]:
        """One prepared job per claimed message (a message whose destination could not be
        loaded gets a job without a state: its sender parks it)."""
        claim_time = time.time()
        jobs = [
            Job(item=item, state=self.destinations.get(item.destination_id), claim_time=claim_time)
            for item in claimed
        ]
        for job in jobs:
            if job.state is not None:
                self.prepare(job, self.shared.view(job.state)[0])
        return jobs

    def prepare(self, job: Job, runtime: DestinationRuntime) -> None:
        """Render the key and metadata and check the request, with the destination's
        current runtime. Done for a whole claim in one pass on the coordinator: measured
        in bench.pipeline, the same work cost ~130 us of CPU per message when each sender
        thread did it between two PUTs (cold caches after every wait), ~30 us in one pass.
        A sender calls it again for a job whose destination changed while it waited."""
        item = job.item
        job.runtime, job.key, job.prepared, job.problem = runtime, None, None, None
        job.batch = None
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
            if item.leads_batch:
                # The object is built by the sender thread (`load_batch`): here, for a
                # whole claim of leaders on the thread that claims, flushes and keeps
                # every tenant's leases, it held up to 64 MiB each and seconds of CPU.
                compression = _sealed_compression(item, runtime)
                key = batch.batch_key(built.key, compression)
                job.batch = PendingBatch(key, built.metadata, compression)
                job.key = key
                return
            body = item.body if item.body is not None else self._chunks(job)
            request = ObjectRequest(
                key=built.key, body=body, metadata=built.metadata, event_id=item.event_id
            )
            job.key = request.key
            job.prepared = prepare_put(runtime.s3, request)
        except Exception as exc:  # raised again by the sender, which classifies and records it
            job.problem = exc

    def load_batch(self, job: Job) -> Callable[[], None] | None:
        """On the sender thread, just before the PUT: wait for room in the batch memory
        budget, then build the object of the batch `job` leads into `job.prepared`
        (or what went wrong into `job.problem`). Returns the release of that memory, to
        call when the PUT ended; None when the job was cancelled while it waited."""
        pending, runtime, item = job.batch, job.runtime, job.item
        assert pending is not None and runtime is not None
        try:
            size, count = self.broker.batch_size(item.event_id)
        except Exception as exc:  # the queue is away: retried as any failed attempt
            job.problem = exc
            return _nothing
        # The lines, then the object beside them while it is built (compressed, or the
        # lines joined), and each line's objects.
        need = 2 * size + _LINE_OVERHEAD_BYTES * count
        project = item.project_id
        if not self.memory.acquire(project, need, lambda: not self.shared.may_start(job)):
            return None
        try:
            request, job.messages = self._batch_request(item, pending)
            job.prepared = prepare_put(runtime.s3, request)
        except Exception as exc:  # raised again by the sender, which classifies and records it
            job.problem = exc

        def release() -> None:
            job.prepared = None  # the object goes now, not when the job's lease does
            self.memory.release(project, need)

        return release

    def _batch_request(self, item: Claimed, pending: PendingBatch) -> tuple[ObjectRequest, int]:
        """The whole batch `item` leads (SPEC §9), from its sealed lines (the same object
        on every attempt), and how many lines it has."""
        compression = pending.compression
        lines = self.broker.batch_lines(item.event_id)
        if not lines or lines[0].event_id != item.event_id:
            raise MessageDeliveryError(f"the lines of batch {item.event_id} are not stored")
        request = ObjectRequest(
            key=pending.key,
            body=batch.batch_body(lines, compression),
            metadata=batch.batch_metadata(pending.first_metadata, lines),
            event_id=item.event_id,
            content_type=batch.CONTENT_TYPE,
            content_encoding=batch.content_encoding(compression),
        )
        return request, len(lines)

    def _chunks(self, job: Job) -> Iterator[bytes]:
        """A stored large body, read from the database as the upload needs it."""
        for chunk in self.broker.read_chunks(job.item.event_id):
            if self.shared.cancelled(job):
                raise Cancelled(job.item.event_id)
            yield chunk
