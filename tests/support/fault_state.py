"""What the fault proxy (tests/support/fault_proxy.py) counts and decides, kept apart from
its HTTP plumbing: the fault kinds and stages, the figures a test reads (`FaultStats`), the
requests it saw (`SeenRequest`), and the shared state its handler threads update under one
lock — the draw of a random fault, scripted faults (`FaultProxy.fail_next`), the PUTs in
flight and the trace of every PUT that explains a duplicate.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["FAULT_KINDS", "STAGES", "FaultStats", "SeenRequest"]

FAULT_KINDS: tuple[str, ...] = (
    "reset",
    "stall",
    "internal_error",
    "slow_down",
    "conflict",
    "truncated",
)
STAGES: tuple[str, ...] = ("before", "after")


@dataclass
class FaultStats:
    """A snapshot of what the proxy saw and did."""

    requests: int
    forwarded: int  # requests answered by the upstream server
    upstream_errors: int  # the upstream server could not be reached (answered 502)
    injected: dict[tuple[str, str], int]  # (kind, stage) → count
    injected_put: dict[tuple[str, str], int]  # the same, PUT requests only
    puts_acknowledged: dict[str, int]  # object path → PUTs the upstream answered 2xx
    slow_forwards: int  # answers that took longer than client_timeout (or found it gone)
    slow_by_path: dict[str, int]  # object path → such slow, successful PUTs
    after_faults_by_path: dict[str, int]  # object path → after-forward faults on 2xx PUTs
    trace: dict[str, list[tuple[float, str]]]  # object path → PUT events, for explanations
    # The most PUTs in flight through the proxy at once, overall and per bucket.
    max_in_flight: int = 0
    max_in_flight_by_bucket: dict[str, int] = field(default_factory=dict)

    @property
    def total_injected(self) -> int:
        return sum(self.injected.values())

    @property
    def injected_puts(self) -> int:
        return sum(self.injected_put.values())

    def injected_at(self, stage: str, *, puts_only: bool = True) -> int:
        source = self.injected_put if puts_only else self.injected
        return sum(n for (_kind, s), n in source.items() if s == stage)

    def by_kind(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        for (kind, _stage), n in self.injected.items():
            out[kind] += n
        return dict(out)

    @property
    def duplicate_puts(self) -> int:
        """PUTs S3 acknowledged beyond the first, summed over object paths."""
        return sum(n - 1 for n in self.puts_acknowledged.values() if n > 1)

    @property
    def duplicated_keys(self) -> int:
        return sum(1 for n in self.puts_acknowledged.values() if n > 1)

    def unexplained_duplicates(self) -> dict[str, int]:
        """Object path → duplicate PUTs the proxy itself cannot explain by an after-forward
        fault or an answer it saw the client give up on (slow). A heuristic: the client's
        timer also runs while it connects, so some natural timeouts go unseen here; the
        exact check compares with s3dest's own attempts (`FaultScenario.verify`)."""
        out: dict[str, int] = {}
        for path, n in self.puts_acknowledged.items():
            allowed = self.after_faults_by_path.get(path, 0) + self.slow_by_path.get(path, 0)
            if n - 1 > allowed:
                out[path] = n - 1 - allowed
        return out


@dataclass(frozen=True)
class SeenRequest:
    """One request as it reached the proxy: method, path with query, headers (lower-case)."""

    method: str
    path: str
    headers: dict[str, str]


@dataclass
class _Script:
    """`count` faults of `kind` at `stage` on the next requests of `method` whose path
    (with its query) contains every one of `contains`, and none of `excludes`."""

    kind: str
    stage: str
    method: str
    contains: tuple[str, ...]
    excludes: tuple[str, ...]
    left: int
    injected: int = 0

    def matches(self, path: str) -> bool:
        return all(c in path for c in self.contains) and not any(e in path for e in self.excludes)


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    rates: dict[str, float] = field(default_factory=dict)
    after_fraction: float = 0.5
    methods: frozenset[str] = frozenset({"PUT"})
    rng: random.Random = field(default_factory=random.Random)
    requests: int = 0
    forwarded: int = 0
    upstream_errors: int = 0
    injected: Counter[tuple[str, str]] = field(default_factory=Counter)
    injected_put: Counter[tuple[str, str]] = field(default_factory=Counter)
    puts_acknowledged: Counter[str] = field(default_factory=Counter)
    slow_forwards: int = 0
    slow_by_path: Counter[str] = field(default_factory=Counter)
    after_faults_by_path: Counter[str] = field(default_factory=Counter)
    # object path → (seconds since start, what happened) for every PUT, to explain duplicates
    trace: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    # PUTs in flight now and the most at once, overall and per bucket.
    in_flight: int = 0
    in_flight_by_bucket: Counter[str] = field(default_factory=Counter)
    max_in_flight: int = 0
    max_in_flight_by_bucket: dict[str, int] = field(default_factory=dict)
    scripts: list[_Script] = field(default_factory=list)
    seen: list[SeenRequest] = field(default_factory=list)

    def put_began(self, bucket: str) -> None:
        with self.lock:
            self.in_flight += 1
            self.in_flight_by_bucket[bucket] += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.max_in_flight_by_bucket[bucket] = max(
                self.max_in_flight_by_bucket.get(bucket, 0), self.in_flight_by_bucket[bucket]
            )

    def put_ended(self, bucket: str) -> None:
        with self.lock:
            self.in_flight -= 1
            self.in_flight_by_bucket[bucket] -= 1

    def note(self, path: str, event: str) -> None:
        """Record an event of a PUT on `path` (call with the lock held)."""
        self.trace.setdefault(path, []).append((round(time.monotonic() - self.started, 3), event))

    def decide_for(self, method: str, path: str, headers: dict[str, str]) -> tuple[str, str] | None:
        """A scripted fault for this request (`FaultProxy.fail_next`), else a random one.
        Every request is also written to the wire log (`FaultProxy.seen`)."""
        with self.lock:
            self.seen.append(SeenRequest(method, path, headers))
            for script in self.scripts:
                if script.left > 0 and script.method == method and script.matches(path):
                    script.left -= 1
                    script.injected += 1
                    self.requests += 1
                    self.injected[script.kind, script.stage] += 1
                    return script.kind, script.stage
        return self.decide(method)

    def decide(self, method: str) -> tuple[str, str] | None:
        with self.lock:
            self.requests += 1
            if method not in self.methods or not self.rates:
                return None
            draw = self.rng.random()
            for kind, rate in self.rates.items():
                if draw < rate:
                    stage = "after" if self.rng.random() < self.after_fraction else "before"
                    return kind, stage
                draw -= rate
            return None
