"""Large message bodies, streamed: validate and re-encode compactly in bounded memory.

A message of any size arrives as a file-like stream of ``{"data": {...}}`` (or of the
ingest envelope). It is parsed event by event (ijson's C backend) and written out as
compact JSON in chunks, so memory stays bounded by the largest single JSON string, not
by the message. The top-level scalar fields of ``data`` are collected on the way: they
are what key templates and object metadata need.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import IO, Any

import ijson
import orjson

from s3dest.errors import MessageInvalid

CHUNK = 1024 * 1024


@dataclass
class CompactResult:
    envelope: dict[str, Any] = field(default_factory=dict)  # data's top-level scalars
    size: int = 0
    result_items: int = 0


def _scalar(value: Any) -> bytes:
    if isinstance(value, Decimal):
        # ijson yields Decimal for non-integers: keep the digits exactly as sent.
        return str(value).encode()
    return orjson.dumps(value)


def compact_chunks(
    source: IO[bytes], result: CompactResult, *, wrap_data: bool = False
) -> Iterator[bytes]:
    """Yield the compact JSON of `source` in ~1 MiB chunks.

    With ``wrap_data`` the source is a bare ingest message and the output becomes
    ``{"data": <message>}``; otherwise the source must already be ``{"data": {...}}``.
    The envelope (top-level scalars of data) is filled into `result` as parsing goes.
    """
    buffer = bytearray()
    stack: list[bool] = []  # per open container: has it had an element yet?
    data_prefix = "" if wrap_data else "data"
    if wrap_data:
        buffer += b'{"data":'
    pending_key: str | None = None
    try:
        for prefix, event, value in ijson.parse(source, use_float=False):
            if event == "map_key":
                buffer += b"," if stack[-1] else b""
                stack[-1] = True
                buffer += orjson.dumps(value) + b":"
                pending_key = value
                continue
            in_map_value = pending_key is not None
            pending_key = None
            if event in ("start_map", "start_array"):
                if stack and not in_map_value:
                    buffer += b"," if stack[-1] else b""
                    stack[-1] = True
                buffer += b"{" if event == "start_map" else b"["
                stack.append(False)
            elif event in ("end_map", "end_array"):
                stack.pop()
                buffer += b"}" if event == "end_map" else b"]"
                if prefix == f"{data_prefix}.result.item".lstrip("."):
                    result.result_items += 1
            else:
                if stack and not in_map_value:
                    buffer += b"," if stack[-1] else b""
                    stack[-1] = True
                buffer += _scalar(value)
                parent, _, name = prefix.rpartition(".")
                if (
                    parent == data_prefix
                    and name
                    and "." not in name
                    and len(stack) == (1 if wrap_data else 2)
                ):
                    result.envelope[name] = float(value) if isinstance(value, Decimal) else value
            if len(buffer) >= CHUNK:
                result.size += len(buffer)
                yield bytes(buffer)
                buffer.clear()
    except ijson.JSONError as exc:
        raise MessageInvalid(
            f"the message is not valid JSON: {exc}",
            {"body": f"not valid JSON: {exc}"},
        ) from None
    if stack:
        raise MessageInvalid("the message JSON ends early", {"body": "truncated JSON"})
    if wrap_data:
        buffer += b"}"
    if buffer:
        result.size += len(buffer)
        yield bytes(buffer)
