"""The daily summary's schedule: a check every CHECK_SECONDS, on its own thread beside the
webhook dispatcher, that writes the summaries of the UTC day that ended
(`store.summaries.enqueue_daily`; the dispatcher then sends them). Every process runs it;
the database makes each (endpoint, day) one delivery. Once a day's summaries are written
(by this process or another), nothing can become due for that day again (only endpoints
that existed at its end get it), so the check does not touch the database until the next
UTC day."""

from __future__ import annotations

import logging
import time

from sqlalchemy import Engine

from s3dest.background import Periodic
from s3dest.store import summaries

log = logging.getLogger("s3dest.notifications")

CHECK_SECONDS = 60.0  # a day's summary goes out within about a minute of being due


class DailySummaries:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._done: str | None = None  # the last day whose summaries are all written
        self.job = Periodic("s3dest-summaries", CHECK_SECONDS, self.run_once)

    def start(self) -> None:
        self.job.start()
        self.job.wake()  # at once: a process that was down at midnight catches up now

    def stop(self) -> None:
        self.job.stop()

    def run_once(self, now: float | None = None) -> int:
        """Write what is due as of `now` (the clock, for tests); how many deliveries."""
        at = time.time() if now is None else now
        day = summaries.last_completed_day(at).iso
        if self._done == day:
            return 0
        written = summaries.enqueue_daily(self.engine, at)
        self._done = day  # only after it succeeded: a failed run is tried again next round
        if written:
            log.info("daily summaries written", extra={"day": day, "deliveries": written})
        return written
