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

The second half of the module (`FaultScenario`) drives a running ``s3dest serve`` through the
proxy: a destination on it, N messages, wait until nothing is left in flight, then check every
message and object and collect the figures. tests/integration/test_faults.py runs it at suite
size; bench/faults.py at the issue's size.
"""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import random
import secrets
import select
import socket
import struct
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "FAULT_KINDS",
    "FaultProxy",
    "FaultStats",
    "SeenRequest",
    "running_fault_proxy",
]

FAULT_KINDS: tuple[str, ...] = (
    "reset",
    "stall",
    "internal_error",
    "slow_down",
    "conflict",
    "truncated",
)
STAGES: tuple[str, ...] = ("before", "after")

_ERRORS: dict[str, tuple[int, str, str]] = {
    "internal_error": (500, "InternalError", "We encountered an internal error. Please try again."),
    "slow_down": (503, "SlowDown", "Please reduce your request rate."),
    "conflict": (
        409,
        "ConditionalRequestConflict",
        "A conflicting operation occurred. If using PutObject you can retry the request. "
        "If using multipart upload you should initiate another CreateMultipartUpload request "
        "and re-upload each part.",
    ),
}
# Hop-by-hop headers of the upstream answer that the proxy sets itself.
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


def _error_xml(code: str, message: str, path: str) -> bytes:
    request_id = secrets.token_hex(8).upper()
    parts = path.split("?", 1)[0].lstrip("/").split("/", 1)
    bucket = parts[0]
    key = parts[1] if len(parts) > 1 else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<Key>{key}</Key><BucketName>{bucket}</BucketName>"
        f"<RequestId>{request_id}</RequestId><HostId>{secrets.token_hex(16)}</HostId></Error>"
    ).encode()


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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # obstore opens dozens of connections at once
    allow_reuse_address = True

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy
        self.handler_errors = 0
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up mid-answer is part of the game here, not worth a traceback.
        self.handler_errors += 1


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 60  # an idle keep-alive connection's thread ends after this

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- plumbing ------------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        self._upstream: http.client.HTTPConnection | None = None
        self._put_bucket: str | None = None  # the bucket of the PUT in flight, if any
        self.server.proxy._track(self.connection, add=True)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        if self._upstream is not None:
            self._upstream.close()
        self.server.proxy._track(self.connection, add=False)

    def _read_body(self) -> tuple[bytes, bool]:
        """(body, was_chunked). The request is read completely before anything else."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size_line = self.rfile.readline(65537)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks), True
        length = int(self.headers.get("Content-Length") or 0)
        return (self.rfile.read(length) if length else b""), False

    def _object_path(self) -> str:
        return urllib.parse.unquote(self.path.split("?", 1)[0])

    def _bucket(self) -> str:
        """The first path segment: the bucket of a path-style request."""
        return self._object_path().lstrip("/").split("/", 1)[0]

    # -- one request ---------------------------------------------------------------------

    def _handle(self) -> None:
        if self.command != "PUT":
            self._proxy_request()
            return
        self._put_bucket = self._bucket()
        self.server.proxy._state.put_began(self._put_bucket)
        try:
            self._proxy_request()
        finally:
            self._answering()

    def _answering(self) -> None:
        """The PUT leaves the in-flight count: called before the first byte of its answer
        (or the reset) goes back, so a client that starts its next PUT as soon as it hears
        back is never seen with one more in flight than it has. Idempotent."""
        bucket, self._put_bucket = self._put_bucket, None
        if bucket is not None:
            self.server.proxy._state.put_ended(bucket)

    def _proxy_request(self) -> None:
        proxy = self.server.proxy
        started = time.monotonic()
        body, chunked = self._read_body()
        fault = proxy._state.decide_for(
            self.command, self.path, {k.lower(): v for k, v in self.headers.items()}
        )
        if fault is not None and fault[1] == "before":
            self._inject(fault, None)
            return
        if self.command == "PUT" and proxy.put_delay_seconds > 0:
            proxy._stopping.wait(proxy.put_delay_seconds)
        try:
            answer = self._forward(body, chunked)
        except (OSError, http.client.HTTPException):
            with proxy._state.lock:
                proxy._state.upstream_errors += 1
            if self._upstream is not None:
                self._upstream.close()
                self._upstream = None
            with contextlib.suppress(OSError):
                self._send(502, [("Content-Type", "text/plain")], b"upstream error", close=True)
            return
        status = answer[0]
        path = self._object_path()
        is_put_ok = self.command == "PUT" and 200 <= status < 300
        with proxy._state.lock:
            proxy._state.forwarded += 1
            if is_put_ok:
                proxy._state.puts_acknowledged[path] += 1
        if fault is not None:
            self._inject(fault, answer)
            return
        client_gone = self._client_gone()
        try:
            self._send(answer[0], answer[1], answer[2], reason=answer[3])
        except OSError:
            client_gone = True
            self.close_connection = True
        if self.command == "PUT":
            with proxy._state.lock:
                proxy._state.note(
                    path,
                    f"relayed {status} after {time.monotonic() - started:.3f}s"
                    + (" (client gone)" if client_gone else ""),
                )
        # The client may have given up on this request without any injected fault: count it,
        # since S3 has the object and the client will write it again.
        if client_gone or time.monotonic() - started > proxy.client_timeout * proxy.slow_margin:
            with proxy._state.lock:
                proxy._state.slow_forwards += 1
                if is_put_ok:
                    proxy._state.slow_by_path[path] += 1

    def _client_gone(self) -> bool:
        """Did the client hang up (time out) while S3 was answering? A FIN or RST is waiting."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return False
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def _forward(self, body: bytes, chunked: bool) -> tuple[int, list[tuple[str, str]], bytes, str]:
        proxy = self.server.proxy
        if self._upstream is None:
            self._upstream = http.client.HTTPConnection(
                proxy.upstream_host, proxy.upstream_port, timeout=proxy.upstream_timeout
            )
        conn = self._upstream
        conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for name, value in self.headers.items():
            conn.putheader(name, value)
        if chunked:
            conn.endheaders()
            if body:
                conn.send(b"%x\r\n%s\r\n" % (len(body), body))
            conn.send(b"0\r\n\r\n")
        else:
            conn.endheaders(body if body else None)
        response = conn.getresponse()
        payload = response.read()
        headers = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
        if response.will_close:
            conn.close()
            self._upstream = None
        return response.status, headers, payload, response.reason

    def _send(
        self,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
        *,
        reason: str | None = None,
        close: bool = False,
    ) -> None:
        self._answering()
        self.send_response_only(status, reason)
        for name, value in headers:
            self.send_header(name, value)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _inject(
        self,
        fault: tuple[str, str],
        answer: tuple[int, list[tuple[str, str]], bytes, str] | None,
    ) -> None:
        kind, stage = fault
        proxy = self.server.proxy
        with proxy._state.lock:
            if self.command == "PUT":
                proxy._state.note(self._object_path(), f"fault {kind}/{stage}")
            proxy._state.injected[fault] += 1
            if self.command == "PUT":
                proxy._state.injected_put[fault] += 1
                if stage == "after" and answer is not None and 200 <= answer[0] < 300:
                    proxy._state.after_faults_by_path[self._object_path()] += 1
        if kind == "reset":
            self._reset()
        elif kind == "stall":
            proxy._stopping.wait(proxy.stall_seconds)
            self.close_connection = True
        elif kind in _ERRORS:
            status, code, message = _ERRORS[kind]
            try:
                self._send(status, self._error_headers(), _error_xml(code, message, self.path))
            except OSError:  # the client gave up already
                self.close_connection = True
        elif kind == "truncated":
            self._truncated(answer)
        else:  # pragma: no cover - FaultProxy validates kinds
            raise ValueError(kind)

    def _error_headers(self) -> list[tuple[str, str]]:
        return [
            ("x-amz-request-id", secrets.token_hex(8).upper()),
            ("x-amz-id-2", secrets.token_hex(24)),
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Content-Type", "application/xml"),
            ("Server", "AmazonS3"),
        ]

    def _reset(self) -> None:
        self._answering()
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        self.close_connection = True

    def _truncated(self, answer: tuple[int, list[tuple[str, str]], bytes, str] | None) -> None:
        if answer is None:  # before forwarding: an error S3 never finished sending
            status, code, message = _ERRORS["slow_down"]
            answer = (status, self._error_headers(), _error_xml(code, message, self.path), "")
        status, headers, body, reason = answer
        lines = [f"HTTP/1.1 {status} {reason or http.client.responses.get(status, '')}"]
        lines += [f"{k}: {v}" for k, v in headers]
        lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        data = head + body[: len(body) // 2] if body else head[: len(head) // 2]
        self._answering()
        with contextlib.suppress(OSError):
            self.wfile.write(data)
            self.wfile.flush()
        self._reset_after_flush()

    def _reset_after_flush(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_WR)
        self.close_connection = True

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _handle


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


# =========================================================================================
# A fault scenario against a running `s3dest serve`.


@dataclass
class FaultRunResult:
    """What one scenario showed. `problems` lists every broken promise (empty: all kept)."""

    n: int
    ingest_seconds: float
    total_seconds: float
    states: dict[str, int]  # final delivery state → messages
    attempts: int  # sum of attempts over all messages
    failed_attempts: dict[str, int]  # outcome of each failed attempt (retrying, held, parked)
    stats: FaultStats
    problems: list[str]

    @property
    def retries(self) -> int:
        return self.attempts - self.n

    @property
    def delivered(self) -> int:
        return self.states.get("delivered", 0)

    @property
    def natural_failures(self) -> int:
        """Failed attempts beyond the injected faults: timeouts of a loaded machine."""
        return self.retries - self.stats.injected_puts

    @property
    def duplicates_allowed(self) -> int:
        """What at-least-once allows: one duplicate per failed attempt whose PUT may have
        reached S3 — an after-forward fault, or a natural failure (a timeout)."""
        return self.stats.injected_at("after") + max(0, self.natural_failures)

    def figures(self) -> dict[str, Any]:
        s = self.stats
        return {
            "messages": self.n,
            "delivered": self.delivered,
            "states": self.states,
            "requests_through_proxy": s.requests,
            "faults_injected": s.total_injected,
            "faults_by_kind": s.by_kind(),
            "faults_before_forward": s.injected_at("before"),
            "faults_after_forward": s.injected_at("after"),
            "retries": self.retries,
            "failed_attempts": self.failed_attempts,
            "natural_failures": self.natural_failures,
            "slow_answers": s.slow_forwards,
            "upstream_errors": s.upstream_errors,
            "duplicate_puts": s.duplicate_puts,
            "duplicated_keys": s.duplicated_keys,
            "duplicates_allowed": self.duplicates_allowed,
            "duplicates_the_proxy_cannot_place": sum(s.unexplained_duplicates().values()),
            "ingest_seconds": round(self.ingest_seconds, 2),
            "total_seconds": round(self.total_seconds, 2),
            "messages_per_second": round(self.n / self.total_seconds, 1)
            if self.total_seconds
            else None,
            "problems": len(self.problems),
        }


class FaultScenario:
    """Drive N messages through a destination whose endpointUrl is the fault proxy."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        project_id: str,
        proxy: FaultProxy,
        *,
        s3: Any,  # tests.support.moto_server.S3Server
        bucket: str,
    ) -> None:
        import httpx

        self.http = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=120
        )
        self.project_id = project_id
        self.proxy = proxy
        self.s3 = s3
        self.bucket = bucket
        self.destination = "faulty"
        self.sent: dict[str, bytes] = {}  # event id → the body S3 must hold

    def close(self) -> None:
        self.http.close()

    def create_destination(self) -> dict[str, Any]:
        from tests.support.builders import create_destination

        return create_destination(
            self.http, self.s3, self.bucket, self.destination, endpoint=self.proxy.url
        )

    def message(self, i: int) -> tuple[dict[str, Any], bytes]:
        """An ingest message and the exact bytes its object must hold."""
        import orjson

        fields = {"id": str(i), "email": f"user{i}@example.com", "n": i, "pad": "x" * (i % 97)}
        incoming = {
            "destination": self.destination,
            "action": "read",
            "provider": "generic",
            "installationId": f"inst-{i % 7}",
            "objectName": "contacts",
            "operationId": f"op-{i}",
            "result": [{"fields": fields}],
        }
        data = {
            "action": "read",
            "projectId": self.project_id,
            "provider": "generic",
            "installationId": incoming["installationId"],
            "objectName": "contacts",
            "operationId": incoming["operationId"],
            "result": [{"fields": fields}],
        }
        return incoming, orjson.dumps({"data": data})

    def send(self, n: int, *, batch: int = 100, start: int = 0) -> float:
        began = time.monotonic()
        for first in range(start, start + n, batch):
            pairs = [self.message(i) for i in range(first, min(start + n, first + batch))]
            response = self.http.post("/v1/messages", json={"messages": [m for m, _ in pairs]})
            assert response.status_code == 202, response.text
            accepted = response.json()["accepted"]
            assert len(accepted) == len(pairs)
            for item, (_m, body) in zip(accepted, pairs, strict=True):
                self.sent[item["eventId"]] = body
        return time.monotonic() - began

    def pending(self) -> dict[str, bool]:
        """Which unsettled states still have messages (queued, delivering, retrying, held),
        from one read: the `s3dest_messages` gauges of /metrics, counted in one query. A
        request per state read them at different moments, and a message claimed between
        the "delivering" and the "retrying" reads (retrying → delivering) was in neither:
        the wait saw nothing pending while a retry was in flight."""
        response = self.http.get("/metrics")
        assert response.status_code == 200, response.text
        counts = dict.fromkeys(("queued", "delivering", "retrying", "held"), 0.0)
        for line in response.text.splitlines():
            if line.startswith("s3dest_messages{"):
                state = line.partition('state="')[2].partition('"')[0]
                if state in counts:
                    counts[state] += float(line.rsplit(" ", 1)[1])
        return {state: count > 0 for state, count in counts.items()}

    def wait(self, timeout: float) -> bool:
        """Wait until nothing is queued, delivering or retrying; False on timeout.

        Held messages stop the wait too (they wait for a fix that will not come here)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pending = self.pending()
            if not (pending["queued"] or pending["delivering"] or pending["retrying"]):
                return True
            time.sleep(0.25)
        return False

    def records(self) -> dict[str, dict[str, Any]]:
        from concurrent.futures import ThreadPoolExecutor

        def get(event_id: str) -> tuple[str, dict[str, Any]]:
            response = self.http.get(f"/v1/messages/{event_id}")
            assert response.status_code == 200, response.text
            return event_id, response.json()

        with ThreadPoolExecutor(4) as pool:
            return dict(pool.map(get, list(self.sent)))

    def objects(self, keys: list[str]) -> dict[str, bytes | None]:
        from concurrent.futures import ThreadPoolExecutor

        client = self.s3.client()

        def get(key: str) -> tuple[str, bytes | None]:
            try:
                body: bytes = client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                return key, body
            except client.exceptions.NoSuchKey:
                return key, None

        with ThreadPoolExecutor(8) as pool:
            return dict(pool.map(get, keys))

    def run(self, n: int, *, timeout: float, batch: int = 100) -> FaultRunResult:
        began = time.monotonic()
        ingest_seconds = self.send(n, batch=batch)
        settled = self.wait(timeout)
        total = time.monotonic() - began
        return self.verify(n, ingest_seconds, total, settled=settled, timeout=timeout)

    def verify(
        self, n: int, ingest_seconds: float, total: float, *, settled: bool, timeout: float
    ) -> FaultRunResult:
        problems: list[str] = []
        if not settled:
            problems.append(f"messages still in flight after {timeout:.0f} s")
        records = self.records()
        states: Counter[str] = Counter(r["state"] for r in records.values())
        failed: Counter[str] = Counter()
        attempts = 0
        for event_id, r in records.items():
            attempts += int(r["attempts"])
            for h in r.get("history") or []:
                if h["outcome"] != "delivered":
                    failed[h["outcome"]] += 1
                if h["outcome"] in ("held", "parked"):
                    problems.append(f"{event_id}: an attempt was {h['outcome']}: {h['error']}")
            if r["state"] != "delivered":
                problems.append(
                    f"{event_id}: {r['state']} ({r['lastErrorKind']}: {r['lastError']})"
                )
            elif r["lastErrorKind"] not in (None, "transient"):
                problems.append(f"{event_id}: delivered after a {r['lastErrorKind']} error")
        delivered = {e: r for e, r in records.items() if r["state"] == "delivered"}
        objects = self.objects([r["key"] for r in delivered.values()])
        for event_id, r in delivered.items():
            if r["bucket"] != self.bucket:
                problems.append(f"{event_id}: delivered to bucket {r['bucket']!r}")
            body = objects.get(r["key"])
            if body is None:
                problems.append(
                    f"{event_id}: reported delivered at {r['key']!r} (attempts "
                    f"{r['attempts']}, etag {r['etag']}) but the bucket has no such object"
                )
            elif body != self.sent[event_id]:
                problems.append(f"{event_id}: object {r['key']!r} holds {body[:200]!r}")
        stats = self.proxy.stats()
        # Exact, per message: S3 cannot have acknowledged more PUTs of a key than s3dest made
        # attempts for the message (a retry follows only a failure s3dest saw).
        by_key = {f"/{self.bucket}/{r['key']}": r for r in records.values() if r["key"]}
        for path, acks in sorted(stats.puts_acknowledged.items()):
            record = by_key.get(path)
            if record is None:
                problems.append(f"S3 holds {path}, which no message was delivered to")
            elif acks > int(record["attempts"]):
                history = [
                    (round(h["startedAt"] % 1000, 3), round(h["finishedAt"] % 1000, 3), h["error"])
                    for h in record.get("history") or []
                ]
                problems.append(
                    f"{record['eventId']}: S3 acknowledged {acks} PUTs of {path} but s3dest "
                    f"made {record['attempts']} attempts; proxy saw {stats.trace.get(path)}; "
                    f"attempts {history}"
                )
        # In total: duplicates only where a failed attempt may have reached S3.
        natural = attempts - n - stats.injected_puts
        allowed = stats.injected_at("after") + max(0, natural)
        if stats.duplicate_puts > allowed:
            problems.append(
                f"{stats.duplicate_puts} duplicate PUTs, more than the {allowed} at-least-once "
                f"allows ({stats.injected_at('after')} after-forward faults + {natural} "
                "natural failures)"
            )
        return FaultRunResult(
            n=n,
            ingest_seconds=ingest_seconds,
            total_seconds=total,
            states=dict(states),
            attempts=attempts,
            failed_attempts=dict(failed),
            stats=stats,
            problems=problems,
        )

    def metric(self, name: str) -> float:
        """Sum of a Prometheus counter over its labels, from /metrics."""
        response = self.http.get("/metrics")
        assert response.status_code == 200, response.text
        total = 0.0
        for line in response.text.splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                total += float(line.rsplit(" ", 1)[1])
        return total
