"""The supervised worker thread (`s3dest serve` and `s3dest worker` alike): a crashed loop
is restarted with a new Worker; a stop ends it for good."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from s3dest.delivery import runner
from s3dest.delivery.coordinator import Worker
from s3dest.destinations.secrets import SecretBox
from s3dest.settings import Settings
from s3dest.store.engine import make_engine


def test_a_crashed_loop_is_restarted_and_stops_on_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(data_dir=tmp_path, poll_interval_seconds=0.01)
    engine = make_engine(settings)
    monkeypatch.setattr(runner, "RESTART_DELAY_SECONDS", 0.01)
    started: list[Worker] = []
    real_run = Worker.run

    def run(self: Worker) -> None:
        started.append(self)
        if len(started) == 1:
            raise RuntimeError("a bug in the loop")
        real_run(self)

    monkeypatch.setattr(Worker, "run", run)
    thread = runner.WorkerThread(engine, settings, SecretBox([os.urandom(32)]))
    try:
        thread.start()
        deadline = time.monotonic() + 10
        while len(started) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(started) == 2 and started[0] is not started[1]
        thread.stop()
        assert not thread.is_alive()
        assert len(started) == 2
        assert not [t for t in threading.enumerate() if t.name == "s3dest-worker"]
    finally:
        thread.stop()
        engine.dispose()
