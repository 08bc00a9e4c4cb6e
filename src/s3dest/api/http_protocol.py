"""uvicorn's httptools protocol with the two read timeouts uvicorn lacks.

uvicorn times out an idle keep-alive connection, but not a client that opens a connection
and sends its request headers one byte at a time, nor one that declares a body and stops
sending it: each holds a connection, a request slot and, for a body, its buffers for as
long as it likes (slowloris). Here:

- the request line and headers must arrive within `read_timeout` seconds of the request's
  first byte (or of the connection, for its first request); otherwise 408 and close;
- a body may pause at most `read_timeout` seconds between two chunks while s3dest is
  waiting for it (not while s3dest itself has paused reading); otherwise the connection is
  closed and the request sees a client disconnect.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)

_TIMEOUT_BODY = (
    b'{"error": {"code": "request_timeout", "message": "the request did not arrive in time; '
    b'send it again", "fields": {}}}'
)
_TIMEOUT_ANSWER = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    + f"content-length: {len(_TIMEOUT_BODY)}\r\n\r\n".encode()
    + _TIMEOUT_BODY
)


class TimedHttpToolsProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` with header and body read timeouts (see the module docstring)."""

    read_timeout: float = 30.0  # set per server by `protocol_with_read_timeout`

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_timer: asyncio.TimerHandle | None = None
        self._reading_body = False
        self._last_body_at = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self._headers_too_slow)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_body = False
        self._arm(self._headers_too_slow)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._reading_body = True
        self._last_body_at = self.loop.time()
        self._arm(self._body_too_slow)

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        # A clock read, not a new timer per chunk: the one timer re-arms itself for what
        # is left of the window (ingest is the hot path).
        self._last_body_at = self.loop.time()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_body = False
        self._disarm()

    def _arm(self, handler: Any) -> None:
        self._disarm()
        self._read_timer = self.loop.call_later(self.read_timeout, handler)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _headers_too_slow(self) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being answered; the next one arms its own timer
        log.info(
            "closed a connection whose request headers did not arrive within %.0f s",
            self.read_timeout,
            extra={"client": _address(self.client)},
        )
        self.transport.write(_TIMEOUT_ANSWER)
        self.transport.close()

    def _body_too_slow(self) -> None:
        self._read_timer = None
        if self.transport.is_closing() or not self._reading_body:
            return
        if self.flow is not None and self.flow.read_paused:
            # s3dest paused reading, not the client: the paused time does not count.
            self._last_body_at = self.loop.time()
            self._arm(self._body_too_slow)
            return
        idle = self.loop.time() - self._last_body_at
        if idle < self.read_timeout:
            self._read_timer = self.loop.call_later(self.read_timeout - idle, self._body_too_slow)
            return
        log.info(
            "closed a connection whose request body stalled for %.0f s",
            self.read_timeout,
            extra={"client": _address(self.client)},
        )
        self.transport.close()


def _address(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "unknown"


def protocol_with_read_timeout(seconds: float) -> type[TimedHttpToolsProtocol]:
    """The protocol class for `uvicorn.Config(http=...)` with `seconds` as both timeouts."""
    return type("TimedHttpToolsProtocol", (TimedHttpToolsProtocol,), {"read_timeout": seconds})


def server_config(app: Any, *, host: str, port: int, read_timeout: float) -> uvicorn.Config:
    """The uvicorn configuration of every s3dest server (`serve`, the demo)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol_with_read_timeout(read_timeout),
        log_level="warning",
        access_log=False,
    )
