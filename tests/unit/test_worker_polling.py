"""An idle worker polls the queue less and less often (each poll is a write transaction),
and comes back to its quick poll as soon as there is work or ingest wakes it."""

from __future__ import annotations

import os
from pathlib import Path

from s3dest.delivery.coordinator import IDLE_POLL_MAX_SECONDS, Worker
from s3dest.destinations.secrets import SecretBox
from s3dest.settings import Settings
from s3dest.store.broker import StoreBroker
from s3dest.store.engine import make_engine


def test_idle_polls_back_off_and_wake_resets(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, poll_interval_seconds=0.05)
    engine = make_engine(settings)
    try:
        worker = Worker(StoreBroker(engine), settings, SecretBox([os.urandom(32)]))
        timeouts = []
        for _ in range(12):
            worker.shared.note_poll(idle=True)  # what the loop does after each empty claim
            timeouts.append(worker._poll_timeout())
        assert timeouts[0] == 0.05  # a single empty claim keeps the quick poll
        assert timeouts[1:5] == [0.1, 0.2, 0.4, IDLE_POLL_MAX_SECONDS]
        assert max(timeouts) == IDLE_POLL_MAX_SECONDS == timeouts[-1]
        worker.wake()  # ingest accepted messages
        assert worker._poll_timeout() == 0.05
    finally:
        engine.dispose()
