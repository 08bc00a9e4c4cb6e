"""Loopback listeners for the endpoint-policy tests (tests/security): each counts the
connections it accepted, so a test can prove that a refused address was never contacted.

    closed_port()                          a port on 127.0.0.1 that nothing listens on
    with RawListener(b"SSH-2.0-x\\r\\n") as l:    a TCP listener that is not HTTP
    with ReplyServer(status=403, body=...) as s:  an HTTP server answering every request
                                                  the same way (any headers, any body)
"""

from __future__ import annotations

import contextlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


def closed_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class RawListener:
    """Accepts, says `greeting`, closes; counts accepts."""

    def __init__(self, greeting: bytes = b"SSH-2.0-OpenSSH_9.6\r\n", host: str = "127.0.0.1"):
        self.greeting = greeting
        self.accepted = 0
        self._sock = socket.create_server((host, 0))
        self._sock.settimeout(0.1)
        self.port: int = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            with conn, contextlib.suppress(OSError):
                conn.sendall(self.greeting)

    def __enter__(self) -> RawListener:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.server.owner.requests.append((self.command, self.path))
        owner = self.server.owner
        self.send_response_only(owner.status)
        for name, value in owner.headers:
            self.send_header(name, value)
        body = b"" if self.command == "HEAD" else owner.body
        self.send_header("Content-Length", str(len(owner.body)))
        self.end_headers()
        self.wfile.write(body)

    do_PUT = do_POST = do_GET = do_HEAD = do_DELETE = _answer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: ReplyServer

    def get_request(self) -> tuple[socket.socket, Any]:
        request = super().get_request()
        self.owner.accepted += 1
        return request


class ReplyServer:
    """An HTTP server on loopback answering every request with `status`, `headers`, `body`."""

    def __init__(
        self,
        status: int = 200,
        body: bytes = b"",
        headers: list[tuple[str, str]] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.status, self.body, self.headers = status, body, list(headers or [])
        self.accepted = 0
        self.requests: list[tuple[str, str]] = []
        self._server = _Server((host, 0), _Handler)
        self._server.owner = self
        self.host = host
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> ReplyServer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(2)
