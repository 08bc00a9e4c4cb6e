"""Run a Worker on its own thread and event loop beside the API (or alone)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

from sqlalchemy import Engine

from s3dest.delivery.worker import Worker
from s3dest.destinations.secrets import SecretBox
from s3dest.osthread import name_os_thread
from s3dest.settings import Settings

log = logging.getLogger("s3dest.delivery")


class WorkerThread:
    def __init__(self, engine: Engine, settings: Settings, box: SecretBox) -> None:
        self._engine = engine
        self._settings = settings
        self._box = box
        self._loop: asyncio.AbstractEventLoop | None = None
        self._worker: Worker | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopped = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="s3dest-worker", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=10)

    def _run(self) -> None:
        name_os_thread("s3dest-worker")
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        self._stopped = False
        self._worker = Worker(self._engine, self._settings, self._box)
        self._ready.set()
        try:
            while True:
                try:
                    loop.run_until_complete(self._worker.run())
                except Exception as exc:  # supervise: a crashed loop is restarted
                    log.error("worker crashed; restarting", extra={"errorType": type(exc).__name__})
                    loop.run_until_complete(asyncio.sleep(1.0))
                    if not self._stopped:
                        self._worker = Worker(self._engine, self._settings, self._box)
                        continue
                break
        finally:
            loop.close()

    def wake(self) -> None:
        if self._loop is not None and self._worker is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # loop closed while shutting down
                self._loop.call_soon_threadsafe(self._worker.wake)

    def stop(self, timeout: float | None = None) -> None:
        """Graceful: stop claiming, finish or release in-flight work, then return."""
        self._stopped = True
        if self._loop is not None and self._worker is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._worker.stop)
        if self._thread is not None:
            self._thread.join(timeout=timeout or self._settings.request_timeout_seconds + 10)
