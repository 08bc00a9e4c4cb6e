"""A webhook receiver on loopback, as a customer would run one: it verifies every request's
Standard Webhooks signature with the `standardwebhooks` library and keeps what it got.

    with WebhookReceiver() as receiver:         receiver.url, receiver.secret = "whsec_…"
        receiver.fail_next(1, status=503)       the next request is answered 503
        receiver.events()                       verified payloads, one per webhook-id
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int
    verified: dict[str, Any] | None  # the payload when the signature checked out

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.owner.received(self, body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: WebhookReceiver


class WebhookReceiver:
    def __init__(self, secret: str | None = None) -> None:
        self.secret = secret
        self.requests: list[Received] = []
        self._failures: list[int] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/s3dest"

    def fail_next(self, count: int, status: int = 503) -> None:
        with self._lock:
            self._failures.extend([status] * count)

    def stop_failing(self) -> None:
        """Answer 200 from now on (the failures asked for and not yet answered are dropped)."""
        with self._lock:
            self._failures.clear()

    def received(self, handler: _Handler, body: bytes) -> None:
        headers = {k.lower(): v for k, v in handler.headers.items()}
        verified: dict[str, Any] | None = None
        if self.secret is not None:
            try:
                verified = Webhook(self.secret).verify(body, headers)
            except WebhookVerificationError:
                verified = None
        with self._lock:
            status = self._failures.pop(0) if self._failures else 200
            self.requests.append(Received(headers, body, status, verified))
        handler.send_response_only(status)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        """Verified payloads answered 2xx, one per webhook-id, in the order they came."""
        seen: dict[str, dict[str, Any]] = {}
        with self._lock:
            for r in self.requests:
                if r.verified is not None and r.answered < 300:
                    seen.setdefault(r.webhook_id, r.verified)
        return [e for e in seen.values() if event_type is None or e["type"] == event_type]

    def __enter__(self) -> WebhookReceiver:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(2)
