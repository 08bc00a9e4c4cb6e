"""What the worker's stages hand each other: a claimed message on its way (`Job`), the
per-destination slots (`DestinationState`), a finished PUT and a report for /metrics.

The fields that more than one thread touches are guarded by `Shared`'s lock and only
read or written through its methods (see `s3dest.delivery.shared`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from s3dest import logs
from s3dest.batching import Compression
from s3dest.destinations.runtime import DestinationRuntime
from s3dest.s3.writer import PreparedPut, PutOutcome
from s3dest.store.queue import Claimed, MessageState


@dataclass(eq=False)
class DestinationState:
    # Guarded by Shared's lock: the coordinator replaces `runtime` when the destination's
    # configuration changed; sender threads read it.
    runtime: DestinationRuntime
    failed_at: float = 0.0  # local: when this worker last saw a destination error
    # Sender threads busy with this destination, and the jobs waiting for one of its slots.
    active: int = 0
    waiting: deque[Job] = field(default_factory=deque)


@dataclass(frozen=True, slots=True)
class PendingBatch:
    """A batch's request as dispatch renders it (the object's key, the metadata of its
    first message, the compression it was sealed with); its object is built from the
    sealed lines by the sender thread, just before the PUT (`Dispatcher.load_batch`)."""

    key: str
    first_metadata: dict[str, str]
    compression: Compression


@dataclass(eq=False)
class Job:
    """One claimed message on its way through a sender thread."""

    item: Claimed
    state: DestinationState | None
    claim_time: float
    # Guarded by Shared's lock. `cancelled`: the lease was lost (or the worker is shutting
    # down): do not start, do not record. `finished`: its sender is done with it.
    cancelled: bool = False
    finished: bool = False
    # The request, rendered and checked at dispatch for the runtime it was built with (or
    # what was wrong with it); the sender thread only sends it. Written before the job is
    # handed to a sender, or by that sender itself.
    runtime: DestinationRuntime | None = None
    key: str | None = None
    prepared: PreparedPut | None = None
    problem: Exception | None = None
    # For the leader of a batch: what its object is built from; `prepared` stays None
    # until then, and goes again once its PUT ended (the object is large).
    batch: PendingBatch | None = None
    # The messages its object carries: the lines of the batch it leads (SPEC §9), else 1.
    messages: int = 1


@dataclass(frozen=True, slots=True)
class Delivered:
    """A successful PUT as its sender thread saw it; turned into its outcome, metrics and
    log line at the next flush (with `job.runtime`, the configuration it was sent with)."""

    job: Job
    put: PutOutcome
    started: float
    finished: float


@dataclass(frozen=True, slots=True)
class Report:
    """What one attempt tells `/metrics` and the log, applied at the next flush (from
    one thread, in one pass, instead of on every sender thread)."""

    state: MessageState  # delivered | retrying | held | parked
    destination_id: str
    latency: float | None  # accept → delivered, for delivered messages
    line: logs.BatchEntry
    messages: int = 1  # a batch's delivery delivers all its lines


# destination id → (diagnosis, S3 code, destination version that failed)
Holds = dict[str, tuple[str, str | None, int]]
