"""A fault-injecting HTTP reverse proxy for S3 (moto), and a driver for fault scenarios.

    proxy = FaultProxy(s3_server.endpoint, rates={"reset": 0.04, "slow_down": 0.04}, seed=7)
    proxy.start()                      # proxy.url: point the destination's endpointUrl here
    ...
    proxy.stats()                      # what it injected, per kind and stage; PUTs per key;
                                       # the most PUTs it had in flight at once
    proxy.stop()

The proxy listens on a free loopback port and forwards every request (method, path, query,
every header — Host, Authorization and x-amz-* included — unchanged, and the body) to the
upstream server, then relays the answer. SigV4 signs the Host header the client used, so
forwarding it unchanged keeps signatures valid.

Faults, each at its own rate (a probability per eligible request; by default only PUTs are
eligible, so a request gets at most one fault):

    reset            close the socket without an answer (RST: SO_LINGER 0)
    stall            say nothing for `stall_seconds` (set it above the client's timeout),
                     then close
    internal_error   500 InternalError (S3's XML body)
    slow_down        503 SlowDown
    conflict         409 ConditionalRequestConflict
    truncated        a response cut short: the headers with Content-Length and half the
                     body, then close (an empty-bodied answer, such as a PUT's 200, is cut
                     inside its header block instead)

Each fault is injected at a `stage`:

    before   the request never reaches S3 (a retry writes the object for the first time)
    after    the request reached S3 and succeeded there, but the client sees a failure —
             the source of at-least-once duplicates (a retry writes the object again)

``put_delay_seconds`` (0 by default) holds every PUT that long before forwarding it, so the
PUTs a client has in flight overlap in the proxy. The proxy counts the PUTs in flight at once —
from the moment it has read the request head until it starts to answer, reset or drop it —
overall and per bucket (the first path segment: s3dest addresses S3 path-style,
``/bucket/key``), and keeps the maxima (`FaultStats.max_in_flight`,
`FaultStats.max_in_flight_by_bucket`): a client's concurrency bounds, as S3 would see them.
A stalled PUT counts until the stall ends, also after the client gave up on it.

``after_fraction`` is the share of faults injected after forwarding. The proxy counts what it
injected per (kind, stage), and how many PUTs per object path S3 acknowledged, so a test can
count duplicate writes. An answer that took longer than ``slow_margin × client_timeout`` to
relay (or found the client gone) is counted in ``slow_forwards``: the client may have timed out
on it without any injected fault, so a duplicate there is at-least-once behaving as designed.

The proxy's figures and state are in tests/support/fault_state.py, its HTTP handler in
tests/support/fault_handler.py; `FaultScenario` (tests/support/fault_scenario.py) drives a
running ``s3dest serve`` through it.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from typing import Any

from tests.support.fault_handler import _Server
from tests.support.fault_state import (
    FAULT_KINDS,
    STAGES,
    FaultStats,
    SeenRequest,
    _Script,
    _State,
)

__all__ = ["FaultProxy", "running_fault_proxy"]


class FaultProxy:
    """A reverse proxy in front of `upstream` that injects faults at configured rates."""

    def __init__(
        self,
        upstream: str,
        *,
        rates: Mapping[str, float] | None = None,
        after_fraction: float = 0.5,
        stall_seconds: float = 2.0,
        client_timeout: float = 1.0,
        slow_margin: float = 0.8,
        upstream_timeout: float = 60.0,
        methods: tuple[str, ...] = ("PUT",),
        seed: int | None = None,
        put_delay_seconds: float = 0.0,
    ) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        if parsed.scheme != "http" or not parsed.hostname:
            raise ValueError(f"upstream must be an http:// URL, got {upstream!r}")
        self.upstream_host = parsed.hostname
        self.upstream_port = parsed.port or 80
        self.stall_seconds = stall_seconds
        self.client_timeout = client_timeout
        self.slow_margin = slow_margin
        self.upstream_timeout = upstream_timeout
        if put_delay_seconds < 0:
            raise ValueError("put_delay_seconds must be >= 0")
        self.put_delay_seconds = put_delay_seconds  # each PUT waits this long, then goes on
        self._state = _State(rng=random.Random(seed), methods=frozenset(methods))
        self.set_rates(rates or {}, after_fraction=after_fraction)
        self._stopping = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._sockets_lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- configuration ---------------------------------------------------------------------

    def set_rates(self, rates: Mapping[str, float], *, after_fraction: float | None = None) -> None:
        """Change the fault rates (kind → probability per eligible request) from now on."""
        unknown = set(rates) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {FAULT_KINDS}")
        if any(r < 0 for r in rates.values()) or sum(rates.values()) > 1:
            raise ValueError("rates must be >= 0 and sum to at most 1")
        if after_fraction is not None and not 0 <= after_fraction <= 1:
            raise ValueError("after_fraction is a share between 0 and 1")
        with self._state.lock:
            self._state.rates = {k: float(v) for k, v in rates.items() if v > 0}
            if after_fraction is not None:
                self._state.after_fraction = after_fraction

    def fail_next(
        self,
        kind: str,
        *,
        method: str,
        contains: tuple[str, ...] = (),
        excludes: tuple[str, ...] = (),
        count: int = 1,
        stage: str = "before",
    ) -> None:
        """Inject `count` faults of `kind` on the next `method` requests whose path and
        query contain all of `contains` (e.g. ``("partNumber=2",)``) and none of
        `excludes` — deterministic, unlike the rates."""
        if kind not in FAULT_KINDS or stage not in STAGES:
            raise ValueError(f"unknown fault {kind!r}/{stage!r}")
        with self._state.lock:
            self._state.scripts.append(_Script(kind, stage, method, contains, excludes, count))

    def seen(self) -> list[SeenRequest]:
        """Every request the proxy received so far, in order (the wire log)."""
        with self._state.lock:
            return list(self._state.seen)

    @staticmethod
    def evenly(total: float, kinds: tuple[str, ...] = FAULT_KINDS) -> dict[str, float]:
        """`total` spread evenly over `kinds`: ``FaultProxy.evenly(0.2)``."""
        return {kind: total / len(kinds) for kind in kinds}

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the proxy first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FaultProxy:
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        with self._sockets_lock:
            for sock in list(self._sockets):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _track(self, sock: socket.socket, *, add: bool) -> None:
        with self._sockets_lock:
            if add:
                self._sockets.add(sock)
            else:
                self._sockets.discard(sock)

    # -- figures ---------------------------------------------------------------------------

    def in_flight_now(self) -> int:
        """PUTs the proxy holds at this moment (read, not yet answered)."""
        with self._state.lock:
            return self._state.in_flight

    def stats(self) -> FaultStats:
        s = self._state
        with s.lock:
            return FaultStats(
                requests=s.requests,
                forwarded=s.forwarded,
                upstream_errors=s.upstream_errors,
                injected=dict(s.injected),
                injected_put=dict(s.injected_put),
                puts_acknowledged=dict(s.puts_acknowledged),
                slow_forwards=s.slow_forwards,
                slow_by_path=dict(s.slow_by_path),
                after_faults_by_path=dict(s.after_faults_by_path),
                trace={k: list(v) for k, v in s.trace.items()},
                max_in_flight=s.max_in_flight,
                max_in_flight_by_bucket=dict(s.max_in_flight_by_bucket),
            )


@contextlib.contextmanager
def running_fault_proxy(upstream: str, **options: Any) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream, **options).start()
    try:
        yield proxy
    finally:
        proxy.stop()
