"""A periodic job on its own daemon thread (retention, webhook deliveries): `step()` runs
every `interval` seconds (or at once when woken), an error is logged and the job carries
on at the next round, and `stop()` ends it between steps."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from s3dest.errors import S3destError

log = logging.getLogger("s3dest.background")


class Periodic:
    def __init__(self, name: str, interval: float, step: Callable[[], object]) -> None:
        self.name = name
        self.interval = interval
        self._step = step
        self._stopped = threading.Event()
        self._woken = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def stopping(self) -> bool:
        return self._stopped.is_set()

    def pause(self, seconds: float) -> bool:
        """Sleep inside a step; True when the job is being stopped (then return soon)."""
        return self._stopped.wait(seconds)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._woken.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopped.set()
        self._woken.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._woken.wait(self.interval)
            self._woken.clear()
            if self._stopped.is_set():
                return
            try:
                self._step()
            except S3destError as exc:  # the database is away: try again next round
                log.warning("background job failed", extra={"job": self.name, "error": exc.message})
            except Exception as exc:  # a bug: keep the process, say so, go on
                log.error(
                    "background job crashed",
                    extra={"job": self.name, "errorType": type(exc).__name__},
                )
