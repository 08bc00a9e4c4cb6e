"""Run a Worker on its own thread, beside the API (`s3dest serve`) or alone (`s3dest
worker`), restarting it if its loop crashes: one restart policy for both. The process's
background jobs (retention, webhook deliveries, daily summaries) start and stop with it."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from sqlalchemy import Engine

from s3dest.background import Periodic
from s3dest.delivery.coordinator import Worker
from s3dest.delivery.osthread import name_os_thread
from s3dest.destinations.secrets import SecretBox
from s3dest.notifications.dispatch import Dispatcher
from s3dest.notifications.summary import DailySummaries
from s3dest.retention import Pruner
from s3dest.settings import Settings
from s3dest.store import staging
from s3dest.store.broker import StoreBroker

log = logging.getLogger("s3dest.delivery")

# A crashed loop (a bug: queue errors are handled inside it) is restarted after this long.
RESTART_DELAY_SECONDS = 1.0
# How often a process finishes batches whose writer died (store.staging): at start, then
# this often.
STAGING_RECOVERY_SECONDS = 60.0


class WorkerThread:
    def __init__(self, engine: Engine, settings: Settings, box: SecretBox) -> None:
        self._engine = engine
        self._settings = settings
        self._box = box
        self._lock = threading.Lock()
        self._worker: Worker | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopped = threading.Event()
        self._pruner = Pruner(engine, settings)
        self._webhooks = Dispatcher(engine, settings, box)
        self._summaries = DailySummaries(engine)
        self._staging = Periodic(
            "s3dest-staging", STAGING_RECOVERY_SECONDS, lambda: staging.recover(engine)
        )

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="s3dest-worker", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=10)
        self._pruner.start()
        self._webhooks.start()
        self._summaries.start()
        self._staging.start()
        self._staging.wake()  # at once: a batch committed before a crash is due now

    def _new_worker(self) -> Worker | None:
        with self._lock:
            if self._stopped.is_set():
                return None
            self._worker = Worker(StoreBroker(self._engine), self._settings, self._box)
            return self._worker

    def _run(self) -> None:
        name_os_thread("s3dest-worker")
        worker = self._new_worker()
        self._ready.set()
        while worker is not None:
            try:
                worker.run()
                return
            except Exception as exc:  # supervise: a crashed loop is restarted
                log.error("worker crashed; restarting", extra={"errorType": type(exc).__name__})
                self._stopped.wait(RESTART_DELAY_SECONDS)
                worker = self._new_worker()

    def wake(self) -> None:
        with self._lock:
            worker = self._worker
        if worker is not None:
            worker.wake()

    def stop(self, timeout: float | None = None) -> None:
        """Graceful: stop claiming, finish or release in-flight work, then return."""
        with self._lock:
            self._stopped.set()
            worker = self._worker
        if worker is not None:
            worker.stop()
        self._pruner.stop()
        self._webhooks.stop()
        self._summaries.stop()
        self._staging.stop()
        if self._thread is not None:
            self._thread.join(timeout=timeout or self._settings.request_timeout_seconds + 10)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


def run_until_signalled(engine: Engine, settings: Settings, box: SecretBox) -> None:
    """`s3dest worker`: deliver on a supervised thread until SIGTERM or SIGINT, then stop
    gracefully (in-flight work finished or given back)."""
    runner = WorkerThread(engine, settings, box)
    requested = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        requested.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        runner.start()
        while runner.is_alive() and not requested.wait(1.0):
            pass
        runner.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
