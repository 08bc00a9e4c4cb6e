"""The fault proxy's HTTP side (tests/support/fault_proxy.py): a threaded server whose
handler reads each request whole, asks the proxy's state (tests/support/fault_state.py)
for a fault, forwards to the upstream server and relays, injects or cuts short the answer.
"""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import secrets
import select
import socket
import struct
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from tests.support.fault_state import _State

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


class _Proxy(Protocol):
    """What the handler reads of its `FaultProxy`: where to forward, how long to wait, the
    shared state, and the sockets to close on stop."""

    upstream_host: str
    upstream_port: int
    upstream_timeout: float
    stall_seconds: float
    client_timeout: float
    slow_margin: float
    put_delay_seconds: float
    _state: _State
    _stopping: threading.Event

    def _track(self, sock: socket.socket, *, add: bool) -> None: ...


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # obstore opens dozens of connections at once
    allow_reuse_address = True

    def __init__(self, proxy: _Proxy) -> None:
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
