"""The memory that batch objects (SPEC §9) may take in one process, shared fairly.

A batch's object is built from its sealed lines just before its PUT, on the sender thread
that sends it, and held until the PUT ends: up to `maxBytes` (64 MiB at most) of lines and
as much again of the object while it is built. Unbounded, a backlog of large batches built
at once (a claim takes many) would need gigabytes; with this budget a sender waits for
room instead. A project may hold at most half of the budget while it holds any, so one
tenant's large batches leave room for another's; a batch larger than the whole budget is
built when nothing else is (it would otherwise never go).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

# How often a sender waiting for room looks whether its job was cancelled (lease lost,
# shutdown), when nothing was released meanwhile.
_CANCEL_CHECK_SECONDS = 0.1


class MemoryBudget:
    def __init__(self, limit_bytes: int) -> None:
        self.limit = max(1, limit_bytes)
        self._project_limit = max(1, self.limit // 2)
        self._held = 0
        self._by_project: dict[str, int] = {}
        self._changed = threading.Condition(threading.Lock())

    def _fits(self, project_id: str, size: int) -> bool:
        if self._held == 0:
            return True  # alone: whatever its size, so that it is never stuck
        mine = self._by_project.get(project_id, 0)
        if self._held + size > self.limit:
            return False
        return mine == 0 or mine + size <= self._project_limit

    def acquire(self, project_id: str, size: int, cancelled: Callable[[], bool]) -> bool:
        """Wait until `size` bytes fit; False (nothing taken) once `cancelled()` says so."""
        with self._changed:
            while not self._fits(project_id, size):
                if cancelled():
                    return False
                self._changed.wait(_CANCEL_CHECK_SECONDS)
            self._held += size
            self._by_project[project_id] = self._by_project.get(project_id, 0) + size
            return True

    def release(self, project_id: str, size: int) -> None:
        with self._changed:
            self._held -= size
            left = self._by_project.get(project_id, 0) - size
            if left > 0:
                self._by_project[project_id] = left
            else:
                self._by_project.pop(project_id, None)
            self._changed.notify_all()

    @property
    def held(self) -> int:
        with self._changed:
            return self._held
