"""Large message bodies, streamed: validate and re-encode compactly in bounded memory.

A message of any size arrives as a file-like stream of ``{"data": {...}}`` (or of the
ingest envelope). It is parsed event by event (ijson's C backend, fed by
`s3dest.ingest.stream.ParseSource` so that a long string costs linear time) and written
out as compact JSON in chunks, so memory stays bounded by the largest single JSON string, not
by the message. The top-level scalar fields of ``data`` are collected on the way: they
are what key templates and object metadata need.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import IO, Any

import ijson
import orjson

from s3dest.errors import InvalidInput, MessageInvalid
from s3dest.ingest.stream import ParseSource, basic_events, elements, not_json, number

CHUNK = 1024 * 1024

_M_ARENA_MAX = -8  # glibc mallopt parameter
_arenas_limited = False


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Keep glibc from giving every thread its own malloc arena (once per process).

    Large bodies pass through MiB-sized buffers allocated on many threads (request
    handlers, database reads, obstore's upload threads); with glibc's default of up to
    8 arenas per core each thread's freed buffers stay in its own arena, and a 200 MiB
    message measured 210 MB peak RSS against 155 MB with two arenas. An explicit
    MALLOC_ARENA_MAX in the environment wins; elsewhere than glibc this does nothing.
    """
    global _arenas_limited
    if _arenas_limited or not sys.platform.startswith("linux"):
        return
    _arenas_limited = True
    if os.environ.get("MALLOC_ARENA_MAX"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_ARENA_MAX, arenas)
    except (OSError, AttributeError):  # not glibc (musl, …)
        pass


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
    reader = ParseSource(source)
    try:
        for prefix, event, value in ijson.parse(reader, use_float=False):
            reader.progress = True
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
    except (ijson.JSONError, UnicodeDecodeError) as exc:
        raise _invalid_json(exc) from None
    if stack:
        raise MessageInvalid("the message JSON ends early", {"body": "truncated JSON"})
    if wrap_data:
        buffer += b"}"
    if buffer:
        result.size += len(buffer)
        yield bytes(buffer)


# ---------------------------------------------------------------------------
# Ingest of one large message (``POST /v1/messages`` above the inline limit).
#
# The producer's envelope is not the body: routing fields (``destination``,
# ``integration``…) are dropped, ``projectId`` is set and every result item is normalised
# by its provider, exactly as for a small message. The envelope may come after ``result``,
# and the items can only be normalised once it is known, so the body is parsed once
# (`scan_top_level`): the top-level members are kept, and the items of ``result`` are
# written, as they are parsed, one JSON record each to a temporary file; `write_message_body`
# then writes ``{"data": {..., "result": [...]}}`` from those records, item by item (orjson
# reads them back, some ten times faster than the parse). Memory is bounded by the largest
# single result item: about three times its size at the peak (the parser's buffer, the
# string, its JSON; one 32 MiB string: +97 MiB), as no step holds a copy it no longer needs.

_STARTS = ("start_map", "start_array")
_ENDS = ("end_map", "end_array")


def _invalid_json(exc: Exception) -> MessageInvalid:
    invalid = not_json(exc)
    return MessageInvalid(invalid.message.replace("the body", "the message", 1), invalid.fields)


def first_key(source: IO[bytes]) -> tuple[str, str | None]:
    """How a JSON document starts: ("array", None), ("object", first key or None), ("other", None).

    Tells a batch (``[...]`` or ``{"messages": [...]}``) from a single message without
    reading more than its first piece.
    """
    try:
        events = basic_events(source)
        event, _ = next(events)
        if event == "start_array":
            return "array", None
        if event != "start_map":
            return "other", None
        event, value = next(events)
        return "object", value if event == "map_key" else None
    except StopIteration:
        return "other", None
    except (ijson.JSONError, UnicodeDecodeError) as exc:
        raise _invalid_json(exc) from None


def _member(value: Any) -> Any:
    return number(value) if isinstance(value, Decimal) else value


def scan_top_level(source: IO[bytes], items_out: IO[bytes]) -> dict[str, Any]:
    """The members of the top-level JSON object, with containers emptied; the items of its
    ``result`` array are written to `items_out` (each its length in 8 bytes, then its JSON;
    an item that cannot be written as JSON, such as an integer beyond 64 bits, is written
    as ``!<why>``).

    Scalars come as orjson reads them (floats for non-integers); an object or array member
    becomes ``{}`` or ``[]``, so ``result`` reads ``[]`` when it is an array, and validating
    the returned dict checks the envelope. The whole document is parsed, so invalid JSON
    anywhere (or trailing garbage) is reported here, before anything is stored.
    """
    members: dict[str, Any] = {}
    depth = 0
    key: str | None = None
    seen_root = False
    events = basic_events(source)
    try:
        for event, value in events:
            if depth >= 2:
                if event in _STARTS:
                    depth += 1
                elif event in _ENDS:
                    depth -= 1
                continue
            if depth == 0:
                if seen_root or event != "start_map":
                    raise MessageInvalid(
                        "a message must be a JSON object",
                        {"message": "expected one JSON object"},
                    )
                seen_root = True
                depth = 1
            elif event == "map_key":
                key = value
            elif event == "end_map":
                depth = 0
            elif event == "start_array" and key == "result":
                members[key] = []
                items_out.seek(0)  # a repeated key: the last one counts, as in orjson
                items_out.truncate()
                for item in elements(events):
                    try:
                        line = orjson.dumps(item)
                    except TypeError as exc:
                        line = b"!" + str(exc).encode()
                    del item  # an item with one huge string: each copy counts (see below)
                    items_out.write(len(line).to_bytes(8, "little"))
                    items_out.write(line)
                    del line
            elif event in _STARTS:
                assert key is not None
                members[key] = {} if event == "start_map" else []
                depth = 2
            else:
                assert key is not None
                members[key] = _member(value)
    except (ijson.JSONError, UnicodeDecodeError) as exc:
        raise _invalid_json(exc) from None
    except InvalidInput as exc:
        raise MessageInvalid(exc.message, exc.fields) from None
    if not seen_root or depth != 0:
        raise MessageInvalid("the message JSON ends early", {"body": "truncated JSON"})
    return members


def read_items(items: IO[bytes]) -> Iterator[Any | str]:
    """The items `scan_top_level` wrote, parsed again (str: why one could not be written)."""
    # Each item is its length (8 bytes) and its JSON: read in one piece of exactly that
    # size (a readline() of a 32 MiB line peaked at twice its size), and not held while
    # the caller works on the value.
    items.seek(0)
    while header := items.read(8):
        line = items.read(int.from_bytes(header, "little"))
        value = line[1:].decode() if line.startswith(b"!") else orjson.loads(line)
        del line
        yield value
        del value


def write_message_body(
    items: Iterable[Any],
    head: dict[str, Any],
    item: Callable[[int, Any], bytes],
    out: IO[bytes],
) -> CompactResult:
    """Write ``{"data": {**head, "result": [item(0, r0), item(1, r1), ...]}}`` to `out`.

    `head` is the data object without ``result`` (it comes last, as in every body);
    `item` turns one result item into its compact JSON. The bytes are exactly those of
    ``orjson.dumps({"data": {**head, "result": [...]}})``.
    """
    opening = orjson.dumps({"data": {**head, "result": []}})
    assert opening.endswith(b"[]}}"), "result must be the last member of data"
    result = CompactResult(envelope=dict(head))
    buffer = bytearray(opening[:-3])
    for i, raw in enumerate(items):
        if i:
            buffer += b","
        piece = item(i, raw)
        del raw
        result.result_items += 1
        if len(piece) >= CHUNK:
            # A large item goes out as it is, not copied into the buffer first.
            out.write(buffer)
            out.write(piece)
            result.size += len(buffer) + len(piece)
            buffer.clear()
        else:
            buffer += piece
        del piece
        if len(buffer) >= CHUNK:
            out.write(buffer)
            result.size += len(buffer)
            buffer.clear()
    buffer += b"]}}"
    out.write(buffer)
    result.size += len(buffer)
    return result
