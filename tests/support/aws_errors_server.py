"""A tiny HTTP server answering every request with a canned, AWS-faithful S3 error.

Point an S3 client at ``server.endpoint`` (path-style) and choose what it gets back::

    server.respond_with("PermanentRedirect", region="eu-west-1")   # from now on
    server.respond_with("SlowDown", times=2)                        # the next 2 requests only
    server.respond_with("OK")                                       # a 200 PutObject success

One-shot responses (``times=N``) are served first, in order, then the sticky default
(initially ``InternalError``). Every request is read completely (Content-Length or chunked
body) before the answer goes out, and recorded in ``server.requests``.

The bodies follow the wire format of real S3 responses: the XML declaration, a newline, then
``<Error>`` with no whitespace between elements, elements in the order AWS sends them, sent with
``Transfer-Encoding: chunked`` plus ``x-amz-request-id``, ``x-amz-id-2``, ``Date`` and
``Server: AmazonS3`` headers. Redirects and 400s carry ``x-amz-bucket-region`` and close the
connection as S3 does. HEAD requests get the status and headers without a body, as from S3.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import hashlib
import re
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from xml.sax.saxutils import escape

__all__ = [
    "ERRORS",
    "AwsErrorsServer",
    "CannedResponse",
    "RecordedRequest",
    "running_aws_errors_server",
]

XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'

# code -> (HTTP status, message). Messages are S3's own wording.
ERRORS: dict[str, tuple[int, str]] = {
    "PermanentRedirect": (
        301,
        "The bucket you are attempting to access must be addressed using the specified "
        "endpoint. Please send all future requests to this endpoint.",
    ),
    "AuthorizationHeaderMalformed": (
        400,
        "The authorization header is malformed; the region '{signed_region}' is wrong; "
        "expecting '{region}'",
    ),
    "IllegalLocationConstraintException": (
        400,
        "The {region} location constraint is incompatible for the region specific endpoint "
        "this request was sent to.",
    ),
    "ExpiredToken": (400, "The provided token has expired."),
    "RequestTimeout": (
        400,
        "Your socket connection to the server was not read from or written to within the "
        "timeout period. Idle connections will be closed.",
    ),
    "AccessDenied": (403, "Access Denied"),
    "InvalidAccessKeyId": (
        403,
        "The AWS Access Key Id you provided does not exist in our records.",
    ),
    "SignatureDoesNotMatch": (
        403,
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
    ),
    "NoSuchBucket": (404, "The specified bucket does not exist"),
    "ConditionalRequestConflict": (
        409,
        "A conflicting operation occurred. If using PutObject you can retry the request. "
        "If using multipart upload you should initiate another CreateMultipartUpload request "
        "and re-upload each part.",
    ),
    "PreconditionFailed": (412, "At least one of the pre-conditions you specified did not hold"),
    "InternalError": (500, "We encountered an internal error. Please try again."),
    "SlowDown": (503, "Please reduce your request rate."),
    "ServiceUnavailable": (503, "Please reduce your request rate."),
}

# Codes after which S3 closes the connection (seen in captured S3 responses).
_CLOSES_CONNECTION = {
    "PermanentRedirect",
    "AuthorizationHeaderMalformed",
    "IllegalLocationConstraintException",
    "ExpiredToken",
    "RequestTimeout",
}

_CREDENTIAL_SCOPE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/,\s]+)/")


@dataclass(frozen=True)
class CannedResponse:
    """What to answer: an error ``code`` from `ERRORS` (or ``"OK"``) and its parameters.

    ``region`` is the bucket's real region (PermanentRedirect, AuthorizationHeaderMalformed,
    IllegalLocationConstraintException); ``bucket`` defaults to the first path segment;
    ``message`` overrides S3's wording; ``extra_headers`` are added as they are.
    """

    code: str
    region: str = "eu-west-1"
    bucket: str | None = None
    message: str | None = None
    extra_headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    response_code: str

    @property
    def bucket(self) -> str:
        return self.path.lstrip("/").split("/", 1)[0].split("?", 1)[0]


def _request_id() -> str:
    return secrets.token_hex(8).upper()


def _host_id() -> str:
    return base64.b64encode(secrets.token_bytes(56)).decode()


def _element(name: str, value: str) -> str:
    return f"<{name}>{escape(value)}</{name}>"


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    default: CannedResponse = field(default_factory=lambda: CannedResponse("InternalError"))
    queue: list[CannedResponse] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)

    def next_response(self) -> CannedResponse:
        with self.lock:
            return self.queue.pop(0) if self.queue else self.default


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size_line = self.rfile.readline(65537)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # trailers, up to the empty line
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)  # CRLF after the chunk
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        body = self._read_body()
        canned = self.server.state.next_response()
        headers = {k.lower(): v for k, v in self.headers.items()}
        with self.server.state.lock:
            self.server.state.requests.append(
                RecordedRequest(self.command, self.path, headers, body, canned.code)
            )
        self._respond(canned, headers, body)

    def _respond(self, canned: CannedResponse, headers: dict[str, str], body: bytes) -> None:
        request_id, host_id = _request_id(), _host_id()
        bucket = canned.bucket or self.path.lstrip("/").split("/", 1)[0].split("?", 1)[0]
        response_headers: list[tuple[str, str]] = [
            ("x-amz-id-2", host_id),
            ("x-amz-request-id", request_id),
            ("Date", email.utils.formatdate(usegmt=True)),
        ]
        close = False
        if canned.code == "OK":
            status = 200
            response_headers.append(("ETag", f'"{hashlib.md5(body).hexdigest()}"'))
            payload = b""
        else:
            status, xml = self._error_xml(canned, headers, bucket, request_id, host_id)
            if canned.code in {
                "PermanentRedirect",
                "AuthorizationHeaderMalformed",
                "IllegalLocationConstraintException",
            }:
                response_headers.append(("x-amz-bucket-region", canned.region))
            response_headers.append(("Content-Type", "application/xml"))
            payload = xml.encode("utf-8")
            close = canned.code in _CLOSES_CONNECTION
        response_headers.extend(canned.extra_headers)
        if self.command == "HEAD":
            payload = b""
        self.send_response_only(status)
        for name, value in response_headers:
            self.send_header(name, value)
        if payload:
            self.send_header("Transfer-Encoding", "chunked")
        elif self.command != "HEAD":
            self.send_header("Content-Length", "0")
        self.send_header("Server", "AmazonS3")
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if payload:
            self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload))
        self.wfile.flush()

    @staticmethod
    def _error_xml(
        canned: CannedResponse,
        headers: dict[str, str],
        bucket: str,
        request_id: str,
        host_id: str,
    ) -> tuple[int, str]:
        code = canned.code
        if code not in ERRORS:
            raise ValueError(f"unknown canned response {code!r}")
        status, template = ERRORS[code]
        scope = _CREDENTIAL_SCOPE.search(headers.get("authorization", ""))
        access_key_id = scope.group(1) if scope else ""
        signed_region = scope.group(2) if scope else "us-east-1"
        message = canned.message or template.format(
            region=canned.region, signed_region=signed_region
        )
        parts = [_element("Code", code), _element("Message", message)]
        if code == "PermanentRedirect":
            parts.append(_element("Endpoint", f"{bucket}.s3.{canned.region}.amazonaws.com"))
            parts.append(_element("Bucket", bucket))
        elif code == "AuthorizationHeaderMalformed":
            parts.append(_element("Region", canned.region))
        elif code == "ExpiredToken" and "x-amz-security-token" in headers:
            parts.append(_element("Token-0", headers["x-amz-security-token"]))
        elif code == "InvalidAccessKeyId":
            parts.append(_element("AWSAccessKeyId", access_key_id))
        elif code == "NoSuchBucket":
            parts.append(_element("BucketName", bucket))
        elif code == "PreconditionFailed":
            parts.append(_element("Condition", "If-None-Match"))
        parts.append(_element("RequestId", request_id))
        parts.append(_element("HostId", host_id))
        return status, XML_DECLARATION + "<Error>" + "".join(parts) + "</Error>"

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self.state = _State()


class AwsErrorsServer:
    """A running canned-error S3 endpoint (see the module docstring)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _Server((host, port))
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # shutdown() waits up to one poll interval
            name="aws-errors-server",
            daemon=True,
        )
        self._thread.start()

    @property
    def port(self) -> int:
        port: int = self._server.server_address[1]
        return port

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def respond_with(
        self,
        code: str,
        *,
        times: int | None = None,
        region: str = "eu-west-1",
        bucket: str | None = None,
        message: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer with `code` from now on, or only for the next `times` requests."""
        if code != "OK" and code not in ERRORS:
            raise ValueError(f"unknown canned response {code!r}; known: OK, {', '.join(ERRORS)}")
        canned = CannedResponse(code, region, bucket, message, tuple((headers or {}).items()))
        state = self._server.state
        with state.lock:
            if times is None:
                state.default = canned
            else:
                state.queue.extend([canned] * times)

    @property
    def requests(self) -> list[RecordedRequest]:
        state = self._server.state
        with state.lock:
            return list(state.requests)

    def clear(self) -> None:
        state = self._server.state
        with state.lock:
            state.requests.clear()
            state.queue.clear()
            state.default = CannedResponse("InternalError")

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@contextlib.contextmanager
def running_aws_errors_server() -> Iterator[AwsErrorsServer]:
    server = AwsErrorsServer()
    try:
        yield server
    finally:
        server.stop()
