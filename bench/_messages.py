"""Messages for the benchmarks: HubSpot-like ~1 KiB ingest messages and one large message of
many records, streamed in ~1 MiB pieces or written to a file.

Nothing here is part of s3dest; the benchmarks are scripts that print figures.
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from tests.support.builders import data_of

_ALPHABET = string.ascii_lowercase + string.digits


def _word(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_ALPHABET) for _ in range(n))


def ingest_message(
    i: int, *, destination: str, size: int = 1024, rng: random.Random | None = None
) -> dict[str, Any]:
    """A HubSpot-like read message as producers send it; its stored body is ~`size` bytes."""
    rng = rng or random.Random(i)
    record_id = str(10_000_000 + i)
    fields = {
        "id": record_id,
        "email": f"{_word(rng, 8)}@example.com",
        "firstname": _word(rng, 7).title(),
        "lastname": _word(rng, 9).title(),
        "company": _word(rng, 12).title() + " Inc",
        "lifecyclestage": "lead",
    }
    message: dict[str, Any] = {
        "destination": destination,
        "action": "read",
        "provider": "hubspot",
        "groupRef": "group-42",
        "groupName": "Acme",
        "consumerRef": "consumer-7",
        "consumerName": "Jane",
        "installationId": "7d0c5f0e-2a2b-4f6e-9a1f-4f3c1b2a9e11",
        "installationUpdateTime": "2025-10-14T02:00:00.000000Z",
        "objectName": "contacts",
        "operationId": f"op-{i // 100:06d}",
        "operationTime": "2025-10-14T02:58:59.323405Z",
        "result": [{"fields": fields, "raw": {"id": record_id, "properties": {}}}],
    }
    # Pad the raw record to the requested body size.
    base = len(orjson.dumps({"data": data_of(message, project_id="p" * 36)}))
    pad = max(0, size - base - len(',"notes":""'))
    message["result"][0]["raw"]["properties"]["notes"] = _word(rng, pad)
    return message


def big_message_chunks(
    total_bytes: int, *, wrapped: bool, destination: str | None = None, record_bytes: int = 1024
) -> Iterator[bytes]:
    """Stream a ~`total_bytes` JSON message of many ~1 KiB records, in ~1 MiB pieces.

    ``wrapped``: ``{"data": {...}}`` as `s3dest put` takes it; otherwise a bare ingest message
    (with `destination`) as ``POST /v1/messages`` takes it.
    """
    head: dict[str, Any] = {
        "action": "read",
        "provider": "hubspot",
        "installationId": "7d0c5f0e-2a2b-4f6e-9a1f-4f3c1b2a9e11",
        "objectName": "contacts",
        "operationId": "op-big",
        "operationTime": "2025-10-14T02:58:59.323405Z",
    }
    if destination is not None:
        head = {"destination": destination, **head}
    opening = orjson.dumps(head)[:-1] + b',"result":['
    if wrapped:
        opening = b'{"data":' + opening
    closing = b"]}}" if wrapped else b"]}"
    rng = random.Random(1)
    filler = _word(rng, 4096)
    template = orjson.dumps(
        {
            "fields": {"id": "ID", "email": "x@example.com", "name": "NAME"},
            "raw": {"id": "ID", "properties": {"notes": "NOTES"}},
        }
    )
    overhead = len(template) - len(b"ID") * 2 - len(b"NAME") - len(b"NOTES")
    yield opening
    written = len(opening) + len(closing)
    buf = bytearray()
    i = 0
    while written < total_bytes:
        rid = str(100_000_000 + i).encode()
        name = filler[i % 1000 : i % 1000 + 12].encode()
        notes_len = max(1, record_bytes - overhead - 2 * len(rid) - len(name) - 1)
        start = (i * 7) % (len(filler) - notes_len) if notes_len < len(filler) else 0
        notes = (filler * (notes_len // len(filler) + 1))[start : start + notes_len].encode()
        record = (
            template.replace(b'"ID"', b'"' + rid + b'"')
            .replace(b'"NAME"', b'"' + name + b'"')
            .replace(b'"NOTES"', b'"' + notes + b'"')
        )
        if i:
            buf += b","
        buf += record
        written += len(record) + (1 if i else 0)
        i += 1
        if len(buf) >= 1024 * 1024:
            yield bytes(buf)
            buf.clear()
    if buf:
        yield bytes(buf)
    yield closing


def write_big_message(path: Path, total_bytes: int, *, wrapped: bool, **kwargs: Any) -> int:
    size = 0
    with path.open("wb") as out:
        for chunk in big_message_chunks(total_bytes, wrapped=wrapped, **kwargs):
            out.write(chunk)
            size += len(chunk)
    return size
