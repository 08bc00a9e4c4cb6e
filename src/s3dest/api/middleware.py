"""Request ids: every request gets one (or keeps the caller's X-Request-ID), every log
line written while serving it carries it, and the response echoes it."""

from __future__ import annotations

import re
import uuid
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from s3dest.logs import request_id_var

_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_SAFE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _SAFE_ID.fullmatch(given) else uuid.uuid4().hex
        token = request_id_var.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


def _json_error(status: int, code: str, message: str, fields: dict[str, str]) -> bytes:
    import orjson

    return orjson.dumps({"error": {"code": code, "message": message, "fields": fields}})


def _nul_parameters(query: bytes) -> list[str]:
    """The query parameters whose name or value holds a NUL ("query" when the name itself
    does, so that no NUL is echoed back)."""
    names: list[str] = []
    for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if "\x00" in key:
            name = "query"
        elif "\x00" in value:
            name = key if _SAFE_NAME.fullmatch(key) else "query"
        else:
            continue
        if name not in names:
            names.append(name)
    return names or ["query"]


class InputGuardMiddleware:
    """Refuse, before any route runs, what no route can take:

    - a NUL byte in the path (404: no id contains one) or query (422 naming the parameter):
      PostgreSQL text cannot hold one;
    - a request body above the configured limit, on every route (413 naming the limit).
      Ingest streams its own body and applies `S3DEST_MAX_REQUEST_BYTES`; every other route
      takes JSON or YAML documents of at most `other_limit` bytes.
    """

    def __init__(self, app: ASGIApp, *, ingest_limit: int, other_limit: int) -> None:
        self.app = app
        self.ingest_limit = ingest_limit
        self.other_limit = min(other_limit, ingest_limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope.get("path", ""):
            await self._answer(
                send,
                404,
                "not_found",
                "no such resource (the address contains a NUL byte)",
                {},
            )
            return
        query = scope.get("query_string", b"")
        if b"%00" in query or b"\x00" in query:
            # The resource exists; the input is what is wrong: 422 naming the parameter,
            # as every route with query parameters documents (a 404 here was undocumented
            # on GET /v1/audit, found by the seeded schemathesis run).
            names = _nul_parameters(query)
            await self._answer(
                send,
                422,
                "invalid_input",
                "the query contains a NUL byte; remove it from " + ", ".join(names),
                {name: "must not contain a NUL byte" for name in names},
            )
            return
        is_ingest = scope.get("path", "") == "/v1/messages"
        limit = self.ingest_limit if is_ingest else self.other_limit
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await self._answer(
                send,
                413,
                "payload_too_large",
                f"request body is {int(declared)} bytes; the limit for this route is {limit} "
                "bytes" + (" (S3DEST_MAX_REQUEST_BYTES)" if is_ingest else ""),
                {"body": f"at most {limit} bytes"},
            )
            return
        if is_ingest:
            await self.app(scope, receive, send)
            return
        received = 0
        too_large = False

        async def counting_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    too_large = True
                    # Stop reading: hand the route an empty, final chunk.
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if too_large:
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await self._answer(
                        send,
                        413,
                        "payload_too_large",
                        f"request body exceeds the limit of {limit} bytes for this route",
                        {"body": f"at most {limit} bytes"},
                    )
                return
            await send(message)

        await self.app(scope, counting_receive, guarded_send)

    @staticmethod
    async def _answer(
        send: Send, status: int, code: str, message: str, fields: dict[str, str]
    ) -> None:
        body = _json_error(status, code, message, fields)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


# Swagger UI and ReDoc run inline scripts and ReDoc a worker from a blob; nothing else may
# load from anywhere but s3dest itself (ReDoc's footer would fetch its logo from a CDN).
_DOCS_POLICY = (
    b"default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
    b"frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
DOCS_PATHS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})


class DocsPolicyMiddleware:
    """A Content-Security-Policy on the API documentation pages: same origin only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in DOCS_PATHS:
            await self.app(scope, receive, send)
            return

        async def send_with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"content-security-policy", _DOCS_POLICY))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_policy)
