"""Loopback reverse proxies in front of moto that see what s3dest sends.

`StsRecorder` records what s3dest asks STS. moto checks a role's trust policy, its
sts:ExternalId condition included, but does not say what a request carried; the recorder
keeps every AssumeRole's parameters (RoleArn, ExternalId, RoleSessionName,
DurationSeconds) with the time it arrived.

`EncryptionGate` plays the part of a bucket policy that denies unencrypted PutObject
(`"Condition": {"Null": {"s3:x-amz-server-side-encryption": "true"}}`), which moto cannot
evaluate (it passes no request context to bucket-policy conditions, so it refuses every
PutObject under such a policy). A PUT without x-amz-server-side-encryption among its
*signed* headers gets AWS's answer to an explicit Deny (its wording, which s3dest reads);
every other request goes to moto. The real policy engine's refusal is tested on Ceph RGW
(tests/integration/test_rgw.py).

Both forward requests unchanged (the Host header too, so SigV4 signatures stay valid).

    recorder = StsRecorder(s3_server.endpoint).start()   # S3DEST_STS_ENDPOINT_URL=recorder.url
    recorder.assume_role_calls(role_arn)                 # [{"ExternalId": ..., "at": ...}]
    recorder.stop()
"""

from __future__ import annotations

import http.client
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["EncryptionGate", "Proxy", "StsRecorder"]

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}
_SIGNED = re.compile(r"SignedHeaders=([^,\s]+)")
#: (status, body) to answer instead of forwarding, or None to forward.
Gate = Callable[[str, str, dict[str, str], bytes], tuple[int, bytes] | None]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        self.server.proxy.record(self.command, self.path, headers, body)
        answer = self.server.proxy.gate(self.command, self.path, headers, body)
        if answer is None:
            upstream = urlsplit(self.server.proxy.upstream)
            conn = http.client.HTTPConnection(upstream.hostname or "", upstream.port, timeout=30)
            try:
                conn.request(self.command, self.path, body=body or None, headers=headers)
                reply = conn.getresponse()
                data = b"" if self.command == "HEAD" else reply.read()
                status, reply_headers = reply.status, reply.getheaders()
            finally:
                conn.close()
        else:
            status, data = answer
            reply_headers = [("Content-Type", "application/xml")]
        self.send_response(status)
        for key, value in reply_headers:
            if key.lower() not in _HOP_BY_HOP:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, proxy: Proxy) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.proxy = proxy


class Proxy:
    """Forward everything to `upstream`; subclasses record and gate."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.lock = threading.Lock()
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> Any:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def record(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        return None

    def gate(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes] | None:
        return None


class StsRecorder(Proxy):
    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self._calls: list[dict[str, str]] = []

    def record(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        params = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        params["at"] = str(time.time())
        with self.lock:
            self._calls.append(params)

    def calls(self, action: str | None = None) -> list[dict[str, str]]:
        with self.lock:
            return [c for c in self._calls if action is None or c.get("Action") == action]

    def assume_role_calls(self, role_arn: str) -> list[dict[str, str]]:
        return [c for c in self.calls("AssumeRole") if c.get("RoleArn") == role_arn]


def _signed_headers(headers: dict[str, str]) -> set[str]:
    lowered = {k.lower(): v for k, v in headers.items()}
    found = _SIGNED.search(lowered.get("authorization", ""))
    return set(found.group(1).split(";")) if found else set()


class EncryptionGate(Proxy):
    """Refuse PutObject into `bucket` unless it is server-side encrypted (see above)."""

    def __init__(self, upstream: str, bucket: str) -> None:
        super().__init__(upstream)
        self.bucket = bucket
        self.refused = 0

    def gate(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes] | None:
        if method != "PUT" or not path.startswith(f"/{self.bucket}/"):
            return None
        lowered = {k.lower(): v for k, v in headers.items()}
        if "x-amz-server-side-encryption" in _signed_headers(headers) and lowered.get(
            "x-amz-server-side-encryption"
        ):
            return None
        with self.lock:
            self.refused += 1
        key = urlsplit(path).path
        return 403, (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
            "<Message>User: arn:aws:iam::123456789012:user/writer is not authorized to "
            f'perform: s3:PutObject on resource: "arn:aws:s3:::{key[1:]}" with an explicit '
            "deny in a resource-based policy</Message><RequestId>0</RequestId></Error>"
        ).encode()
