"""The seams of the worker: the queue it takes work from (`Broker`) and the thing that
sends one prepared PUT (`Sender`).

The worker calls exactly these operations; `s3dest.store.broker.StoreBroker` implements
them over the database, and `tests.support` has an in-memory broker and a fake sender for
unit tests of the worker alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from s3dest.errors import OrphanedUpload
from s3dest.s3.writer import PreparedPut, PutOutcome
from s3dest.store.destinations import DestinationRow
from s3dest.store.queue import BatchLine, Claimed, Outcome


class Broker(Protocol):
    """The durable queue as the worker sees it. Every call is blocking and may raise an
    `S3destError` when the queue is away (the worker keeps going and tries again)."""

    def claim(
        self, owner: str, limit: int, lease_seconds: float, exclude_projects: Sequence[str] = ()
    ) -> list[Claimed]:
        """Lease up to `limit` due messages to `owner`, with their destinations' versions,
        passing over the projects in `exclude_projects`."""
        ...

    def extend_leases(self, owner: str, event_ids: Sequence[str], lease_seconds: float) -> set[str]:
        """Extend the leases `owner` still holds among `event_ids`; returns those."""
        ...

    def finish(self, owner: str, worker: str, outcomes: Sequence[Outcome]) -> int:
        """Record a batch of attempts, fenced on the lease; returns how many still held it."""
        ...

    def release(self, owner: str, event_ids: Sequence[str] | None = None) -> int:
        """Give back every message `owner` still leases (graceful shutdown), or those of
        `event_ids` (claimed beyond a project's bound)."""
        ...

    def reap_expired_leases(self) -> int:
        """Messages whose worker died (lease expired) become claimable again."""
        ...

    def hold_destination(
        self,
        destination_id: str,
        *,
        diagnosis: str,
        code: str | None,
        probe_delay: Callable[[int], float],
        version: int,
    ) -> None:
        """Mark a destination failing (as of configuration `version`) and hold its messages."""
        ...

    def release_probes(self) -> int:
        """For each failing destination whose probe is due, release one held message."""
        ...

    def read_chunks(self, event_id: str) -> Iterator[bytes]:
        """A large stored body, chunk by chunk, read as the upload needs it."""
        ...

    def batch_lines(self, leader_id: str) -> Sequence[BatchLine]:
        """The sealed lines of the batch `leader_id` leads, in order (SPEC §9)."""
        ...

    def batch_size(self, leader_id: str) -> tuple[int, int]:
        """(bytes, lines) of that batch, read before its lines are."""
        ...

    def seal_batches(self) -> int:
        """Seal the batching destinations' due batches; returns how many were sealed."""
        ...

    def destination(self, destination_id: str) -> DestinationRow | None:
        """The destination's current configuration (None once deleted)."""
        ...

    def record_orphan(self, destination_id: str, event_id: str, orphan: OrphanedUpload) -> None:
        """A multipart upload of `event_id` could not be aborted: list it for the user."""
        ...


class Sender(Protocol):
    """Makes exactly one attempt at one prepared PUT; raises a classified DeliveryError."""

    def send(self, prepared: PreparedPut) -> PutOutcome: ...
