"""Retry policy: exponential backoff with full jitter, as a small object."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    base_seconds: float
    max_seconds: float

    def ceiling(self, attempt: int) -> float:
        """The upper bound of the wait after `attempt` failures (1-based)."""
        return float(min(self.max_seconds, self.base_seconds * (2 ** max(0, attempt - 1))))

    def next_delay(self, attempt: int) -> float:
        """Full jitter (AWS architecture blog): uniform between 0 and the ceiling."""
        return random.uniform(0.0, self.ceiling(attempt))
