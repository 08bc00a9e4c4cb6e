"""Retention (SPEC §4): delivered messages' records are pruned `S3DEST_RETAIN_DELIVERED`
after their delivery, in batches of `store.retention.BATCH_ROWS` rows, each its own short
transaction, with a pause after each that is twice as long as the batch took: pruning
holds SQLite's one write lock at most a third of the time, and ingest and delivery take
their turns in between. Held and parked messages are never pruned by age. Finished
webhook deliveries go after the same time. On SQLite the freed pages are then given back
to the file system and the WAL truncated, so the files track the live data."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy import Engine

from s3dest.background import Periodic
from s3dest.settings import Settings
from s3dest.store import retention as store

log = logging.getLogger("s3dest.retention")

# How often to look for expired records: at most once a minute, sooner for a short
# retention (tests use seconds).
MAX_INTERVAL_SECONDS = 60.0
MIN_INTERVAL_SECONDS = 0.2
_MIN_PAUSE_SECONDS = 0.01


def interval_for(retain: float) -> float:
    return min(MAX_INTERVAL_SECONDS, max(MIN_INTERVAL_SECONDS, retain / 4))


class Pruner:
    """One per serving or worker process (several prune side by side without conflict)."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.retain = settings.retain_delivered
        self.job = Periodic("s3dest-retention", interval_for(self.retain), self.run_once)

    def start(self) -> None:
        self.job.start()

    def stop(self) -> None:
        self.job.stop()

    def run_once(self) -> int:
        """Prune everything expired now, batch by batch; returns how many messages."""
        cutoff = time.time() - self.retain
        pruned = self._drain(lambda: store.prune_delivered(self.engine, older_than=cutoff))
        outbox = self._drain(lambda: store.prune_webhook_deliveries(self.engine, older_than=cutoff))
        if pruned or outbox:
            reclaimed = store.reclaim_sqlite(self.engine)
            log.info(
                "pruned delivered records",
                extra={
                    "messages": pruned,
                    "webhookDeliveries": outbox,
                    "pagesFreed": reclaimed.pages_freed,
                    "walTruncated": reclaimed.wal_truncated,
                },
            )
        return pruned

    def _drain(self, batch: Callable[[], int]) -> int:
        total = 0
        while not self.job.stopping:
            started = time.monotonic()
            count = batch()
            total += count
            if count < store.BATCH_ROWS:
                break
            took = time.monotonic() - started
            if self.job.pause(max(_MIN_PAUSE_SECONDS, 2 * took)):
                break
        return total
