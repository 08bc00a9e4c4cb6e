"""The worker's broker (`s3dest.delivery.broker.Broker`) over the database queue."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from sqlalchemy import Engine

from s3dest.errors import OrphanedUpload
from s3dest.store import queue, uploads
from s3dest.store.destinations import DestinationRow, get_destination_by_id


class StoreBroker:
    """Each call is one of `s3dest.store.queue`'s operations on `engine`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._seal_turn = 0  # seal rounds so far: which batching destination goes first

    def claim(
        self, owner: str, limit: int, lease_seconds: float, exclude_projects: Sequence[str] = ()
    ) -> list[queue.Claimed]:
        return queue.claim(self.engine, owner, limit, lease_seconds, exclude_projects)

    def extend_leases(self, owner: str, event_ids: Sequence[str], lease_seconds: float) -> set[str]:
        return queue.extend_leases(self.engine, owner, event_ids, lease_seconds)

    def finish(self, owner: str, worker: str, outcomes: Sequence[queue.Outcome]) -> int:
        return queue.finish(self.engine, owner, worker, outcomes)

    def release(self, owner: str, event_ids: Sequence[str] | None = None) -> int:
        return queue.release(self.engine, owner, event_ids)

    def reap_expired_leases(self) -> int:
        return queue.reap_expired_leases(self.engine)

    def hold_destination(
        self,
        destination_id: str,
        *,
        diagnosis: str,
        code: str | None,
        probe_delay: Callable[[int], float],
        version: int,
    ) -> None:
        queue.hold_destination(
            self.engine,
            destination_id,
            diagnosis=diagnosis,
            code=code,
            probe_delay=probe_delay,
            version=version,
        )

    def release_probes(self) -> int:
        return queue.release_probes(self.engine)

    def batch_lines(self, leader_id: str) -> Sequence[queue.BatchLine]:
        return queue.batch_lines(self.engine, leader_id)

    def batch_size(self, leader_id: str) -> tuple[int, int]:
        return queue.batch_size(self.engine, leader_id)

    def seal_batches(self) -> int:
        self._seal_turn += 1
        return queue.seal_due(
            self.engine, round_seconds=queue.SEAL_ROUND_SECONDS, turn=self._seal_turn
        )

    def read_chunks(self, event_id: str) -> Iterator[bytes]:
        return queue.read_chunks(self.engine, event_id)

    def destination(self, destination_id: str) -> DestinationRow | None:
        return get_destination_by_id(self.engine, destination_id)

    def record_orphan(self, destination_id: str, event_id: str, orphan: OrphanedUpload) -> None:
        uploads.record_orphan(self.engine, destination_id, event_id, orphan)
