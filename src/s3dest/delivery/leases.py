"""The leases this worker holds, kept alive while their work takes long.

Only the coordinator thread touches the table; a job's `cancelled` flag goes through
`Shared`, which the sender threads read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from s3dest.delivery.broker import Broker
from s3dest.delivery.jobs import Job
from s3dest.delivery.shared import Shared
from s3dest.errors import S3destError

log = logging.getLogger("s3dest.delivery")


class Leases:
    """Event id → (its job, when the lease was last set), from claim until the outcome is
    recorded.

    A lease is renewed once a third of it has passed, so a live worker never loses a
    message to the reaper; if the lease was lost anyway (the process stalled longer than
    the lease), the attempt is cancelled: another worker owns it now. A job not started
    yet is never started; a streamed upload stops at its next chunk; a small PUT already
    on the wire completes, and its outcome is not recorded.
    """

    def __init__(self, broker: Broker, shared: Shared, owner: str, lease_seconds: float) -> None:
        self.broker = broker
        self.shared = shared
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.period = max(0.05, lease_seconds / 6)  # how often `keep` runs
        self._table: dict[str, tuple[Job, float]] = {}

    def add(self, jobs: Iterable[Job], at: float) -> None:
        for job in jobs:
            self._table[job.item.event_id] = (job, at)

    def drop(self, event_ids: Iterable[str]) -> None:
        """Their outcomes are recorded: the leases are over."""
        for event_id in event_ids:
            self._table.pop(event_id, None)

    def jobs(self) -> list[Job]:
        return [job for job, _ in self._table.values()]

    def __len__(self) -> int:
        return len(self._table)

    def keep(self) -> None:
        """One round of the keeper: extend the leases a third through, cancel lost ones."""
        for job in self.shared.take_unrecorded():
            # An attempt that ended without an outcome keeps no lease alive: the message
            # goes back to the queue when its lease expires (or at release on shutdown).
            entry = self._table.get(job.item.event_id)
            if entry is not None and entry[0] is job:
                del self._table[job.item.event_id]
        lease = self.lease_seconds
        now = time.monotonic()
        due = [eid for eid, (_, at) in self._table.items() if now - at >= lease / 3]
        if not due:
            return
        try:
            held = self.broker.extend_leases(self.owner, due, lease)
        except S3destError as exc:
            log.error("cannot extend leases", extra={"error": exc.message})
            return
        for event_id in due:
            entry = self._table.get(event_id)
            if entry is None:
                continue
            job, _ = entry
            if event_id in held:
                self._table[event_id] = (job, now)
            elif self.shared.cancel_running(job):
                # Lost (reaped while this process stalled): stop, do not race the new owner.
                log.warning("lease lost", extra={"eventId": event_id, "worker": self.owner})
                self._table.pop(event_id, None)
