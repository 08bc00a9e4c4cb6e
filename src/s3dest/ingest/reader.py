"""The HTTP body of ``POST /v1/messages``: read, spooled to disk when large, parsed.

A small body is read into memory, a large one spooled to an unlinked file in the data
directory (never whole in memory). A batch, small or large, is parsed as a stream
(`s3dest.ingest.stream`), one message at a time; one small message is parsed whole
(orjson), one large message streamed through `s3dest.ingest.large`.
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from s3dest.datadir import private_dir
from s3dest.errors import InvalidInput, MessageInvalid, PayloadTooLarge
from s3dest.ingest import bodies, stream
from s3dest.ingest.service import Accepted, Ingestor
from s3dest.settings import Settings
from s3dest.store.idempotency import KeyClaim

if TYPE_CHECKING:
    from starlette.requests import Request


def _too_large(size: int, limit: int, *, declared: bool) -> PayloadTooLarge:
    what = f"request body is {size} bytes" if declared else "request body exceeds"
    return PayloadTooLarge(
        f"{what}; the limit is {limit} bytes (S3DEST_MAX_REQUEST_BYTES). "
        "Send fewer messages per request"
    )


def spool_dir(settings: Settings) -> Path:
    # In the data directory, not /tmp: /tmp may be RAM (tmpfs), which is the point to avoid.
    return private_dir(settings.data_dir / "tmp")


async def read_body(
    request: Request, settings: Settings, *, on_size: Callable[[int], None] | None = None
) -> bytes | IO[bytes]:
    """The request body: bytes when small, else a temporary file (never whole in memory).

    Bodies above ``inline_body_bytes`` (declared by Content-Length, or found while
    reading a chunked request) are spooled to an unlinked file in the data directory.
    `on_size` is told the size read so far after each piece (it may refuse by raising).
    """
    limit, inline = settings.max_request_bytes, settings.inline_body_bytes
    declared = request.headers.get("content-length")
    declared_size = int(declared) if declared and declared.isdigit() else None
    if declared_size is not None and declared_size > limit:
        raise _too_large(declared_size, limit, declared=True)
    spool: IO[bytes] | None = None
    if declared_size is not None and declared_size > inline:
        spool = tempfile.TemporaryFile(dir=spool_dir(settings))  # noqa: SIM115 (returned)
    parts: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(size, limit, declared=False)
            if on_size is not None:
                on_size(size)
            if spool is not None:
                spool.write(chunk)
                continue
            parts.append(chunk)
            if size > inline:
                spool = tempfile.TemporaryFile(dir=spool_dir(settings))  # noqa: SIM115 (returned)
                for part in parts:
                    spool.write(part)
                parts = []
    except BaseException:
        if spool is not None:
            spool.close()
        raise
    if spool is None:
        return b"".join(parts)
    spool.flush()
    spool.seek(0)
    return spool


# A batch is committed in one transaction (its messages are stored inline, not in
# chunks): larger messages come alone, and are streamed.
_BATCH_BYTES = 64 * 1024 * 1024

# A body that starts as a batch does: ``[`` or ``{"messages":``.
_BATCH_START = re.compile(rb'\A[ \t\r\n]*(?:\[|\{[ \t\r\n]*"messages"[ \t\r\n]*:)')


def ingest_body(
    ingestor: Ingestor,
    settings: Settings,
    project_id: str,
    body: bytes | IO[bytes],
    *,
    sink: IO[bytes] | None = None,
    claim: KeyClaim | None = None,
) -> Accepted:
    """Check and store the body of ``POST /v1/messages`` (blocking: run on a thread); with
    a `sink`, the 202's JSON is written there (see `Accepted`); with an idempotency key's
    `claim`, its answer is saved with the messages."""
    if not isinstance(body, bytes):
        return ingest_spooled(ingestor, settings, project_id, body, sink=sink, claim=claim)
    spool = str(spool_dir(settings))
    if _BATCH_START.match(body):
        messages = stream.batch_messages(io.BytesIO(body))
        return ingestor.ingest(
            project_id, messages, batch=True, spool_dir=spool, sink=sink, claim=claim
        )
    items, batch = parse_ingest_body(body)
    return ingestor.ingest(project_id, items, batch=batch, sink=sink, claim=claim)


def ingest_spooled(
    ingestor: Ingestor,
    settings: Settings,
    project_id: str,
    spool: IO[bytes],
    *,
    sink: IO[bytes] | None = None,
    claim: KeyClaim | None = None,
) -> Accepted:
    """A spooled body: one large message or a batch (within limits), streamed."""
    kind, first = bodies.first_key(spool)
    spool.seek(0)
    if kind == "array" or (kind == "object" and first == "messages"):
        size = os.fstat(spool.fileno()).st_size
        limit = max(_BATCH_BYTES, settings.inline_body_bytes)
        if size > limit:
            raise PayloadTooLarge(
                f"a batch request is limited to {limit} bytes; this one is {size}. Send "
                "fewer messages per request, and messages larger than "
                f"{settings.inline_body_bytes} bytes one per request (they are "
                "streamed, up to S3DEST_MAX_REQUEST_BYTES)"
            )
        messages = stream.batch_messages(spool)
        return ingestor.ingest(
            project_id,
            messages,
            batch=True,
            spool_dir=str(spool_dir(settings)),
            sink=sink,
            claim=claim,
        )
    if kind != "object":
        raise MessageInvalid(
            "a message must be a JSON object",
            {"message": 'send one message object, or a batch {"messages": [...]}'},
        )
    return ingestor.ingest_large(
        project_id, spool, spool_dir=str(spool_dir(settings)), sink=sink, claim=claim
    )


# orjson reads integers beyond 64 bits as floats: they would be written rounded. Such
# literals are rare, so a cheap scan decides whether the exact (slower) check runs: a run of
# 19 or more ASCII digits. Every digit is mapped to b"0" and the run searched as a substring,
# which is some 20 times faster than the regex rb"\d{19,}" over the same body.
_DIGITS_AS_ZERO = bytes.maketrans(b"0123456789", b"0" * 10)
_DIGIT_RUN = b"0" * 19


def _maybe_big_int(raw: bytes) -> bool:
    return _DIGIT_RUN in raw.translate(_DIGITS_AS_ZERO)


_INT64 = range(-(2**63), 2**64)


def _refuse_big_integers(raw: bytes) -> None:
    too_big: list[str] = []

    def parse_int(literal: str) -> int:
        value = int(literal)
        if value not in _INT64:
            too_big.append(literal)
        return value

    try:
        json.loads(raw, parse_int=parse_int)
    except ValueError:
        return  # orjson already accepted it; nothing more to learn here
    if too_big:
        sample = too_big[0] if len(too_big[0]) <= 40 else too_big[0][:37] + "..."
        raise InvalidInput(
            "the body has an integer too large to store exactly",
            {
                "body": f"the integer {sample} does not fit in 64 bits and would lose "
                "precision; send it as a string"
            },
        )


def parse_ingest_body(raw: bytes) -> tuple[list[Any], bool]:
    """(messages, is_batch) from a request body; clear errors for bad JSON."""
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(
            f"the body is not valid JSON: {exc}",
            {
                "body": f"not valid JSON (UTF-8) at {exc.pos if hasattr(exc, 'pos') else '?'}: "
                f"{exc.msg if hasattr(exc, 'msg') else exc}"
            },
        ) from None
    if _maybe_big_int(raw):
        _refuse_big_integers(raw)
    if isinstance(payload, dict) and "messages" in payload:
        items = payload["messages"]
        if not isinstance(items, list) or len(payload) != 1:
            raise MessageInvalid(
                'a batch is {"messages": [...]}',
                {"messages": "must be a list of messages, and the only key of the body"},
            )
        return items, True
    if isinstance(payload, list):
        return payload, True
    return [payload], False
