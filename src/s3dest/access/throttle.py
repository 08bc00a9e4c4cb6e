"""Throttling of failed authentication, per client address (API keys and the sign-in form).

After `limit` failures from one address within `window` seconds, that address gets 429
with Retry-After for every authentication until its oldest failure in the window ages
out; keys are not even looked up meanwhile, so guessing from there stops. Keys that
authenticated in this process within the last ten minutes keep working from a throttled
address: many tenants may share one address (a platform's egress, a NAT), and one
tenant's client retrying with a revoked key must not lock the others out.

The counters live in this process, not in the database: a failure costs no write, and an
attacker cannot turn failures into load on the shared database. The trade-off: with N
API processes behind a load balancer an address gets up to N × `limit` failures per
window, and a restart forgets them. The README's "Failed authentication" says so.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass

from s3dest.store.projects import key_prefix

log = logging.getLogger("s3dest.auth")

GOOD_SECONDS = 600.0


@dataclass(frozen=True, slots=True)
class Failure:
    count: int  # failures of the address in the window, this one included
    throttled_now: bool  # this failure reached the limit


class AuthThrottle:
    def __init__(self, *, limit: int, window: float, max_entries: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self._max = max_entries
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._good: OrderedDict[str, float] = OrderedDict()  # key digest -> good until
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.limit > 0 and self.window > 0

    def _recent(self, client: str, now: float) -> deque[float] | None:
        times = self._failures.get(client)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[client]
            return None
        return times

    def retry_after(self, client: str, digest: str | None = None) -> int | None:
        """Seconds until `client` may try again, or None when it may now (always for a key
        digest that authenticated here lately)."""
        if not self.enabled:
            return None
        now = time.monotonic()
        with self._lock:
            if digest is not None and self._good.get(digest, 0.0) > now:
                return None
            times = self._recent(client, now)
            if times is None or len(times) < self.limit:
                return None
            return max(1, math.ceil(times[0] + self.window - now))

    def failed(self, client: str) -> Failure:
        now = time.monotonic()
        with self._lock:
            times = self._recent(client, now)
            if times is None:
                times = self._failures[client] = deque(maxlen=max(self.limit, 1))
                while len(self._failures) > self._max:
                    self._failures.popitem(last=False)
            times.append(now)
            self._failures.move_to_end(client)
            return Failure(count=len(times), throttled_now=len(times) == self.limit)

    def succeeded(self, digest: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._good[digest] = now + GOOD_SECONDS
            self._good.move_to_end(digest)
            while len(self._good) > self._max:
                self._good.popitem(last=False)


def report_failure(throttle: AuthThrottle, *, surface: str, client: str, presented: str) -> None:
    """Count a failed authentication and log it: one line with the client address and, at
    most, the prefix of what was presented — never the key."""
    failure = throttle.failed(client) if throttle.enabled else Failure(0, False)
    log.warning(
        "authentication failed",
        extra={
            "surface": surface,
            "clientAddress": client,
            "keyPrefix": key_prefix(presented),
            "failures": failure.count,
            "limit": throttle.limit,
        },
    )
    if failure.throttled_now:
        log.warning(
            "authentication throttled",
            extra={
                "surface": surface,
                "clientAddress": client,
                "failures": failure.count,
                "windowSeconds": throttle.window,
            },
        )
