"""The object of one batch (SPEC §9): JSON Lines, compressed, named after its first message.

Everything is derived from the batch's sealed lines (`store.queue.batches.batch_lines`),
never from the attempt: every retry writes the same bytes to the same key. Compression is
deterministic (gzip without a file name or time stamp, zstd at a fixed level, fed the same
lines in the same order).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from typing import Protocol

import zstandard

from s3dest.batching import Compression
from s3dest.keys.context import rfc3339_nano

CONTENT_TYPE = "application/x-ndjson"
_EXTENSIONS: dict[str, str] = {"gzip": ".jsonl.gz", "zstd": ".jsonl.zst", "none": ".jsonl"}
_ENCODINGS: dict[str, str | None] = {"gzip": "gzip", "zstd": "zstd", "none": None}
_GZIP_LEVEL = 6
_ZSTD_LEVEL = 3


class Line(Protocol):
    """One sealed line of a batch (as the store reads it)."""

    @property
    def event_id(self) -> str: ...
    @property
    def event_time_ns(self) -> int: ...
    @property
    def body(self) -> bytes: ...


def batch_key(rendered: str, compression: Compression) -> str:
    """The key template's key for the first message, with the format's extension in place
    of `.json` (the default template's), or after it when the template has none."""
    stem = rendered[: -len(".json")] if rendered.endswith(".json") else rendered
    return stem + _EXTENSIONS[compression]


def content_encoding(compression: Compression) -> str | None:
    return _ENCODINGS[compression]


def batch_body(lines: Iterable[Line], compression: Compression) -> bytes:
    """The lines, one compact `{"data": …}` each, newline-terminated, compressed."""
    if compression == "gzip":
        gzip = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, 31)  # 31: a gzip header, mtime 0
        out = [gzip.compress(line.body + b"\n") for line in lines]
        out.append(gzip.flush())
        return b"".join(out)
    raw = b"".join(line.body + b"\n" for line in lines)
    if compression == "zstd":
        return zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(raw)
    return raw


def batch_metadata(first: dict[str, str], lines: Sequence[Line]) -> dict[str, str]:
    """The object's x-amz-meta-*: the project, destination, event-id and timestamp of the
    first message (what the key was rendered for), and the batch: its count and its first
    and last event times. The other per-message fields (installation, operation, object
    name…) differ between lines, so a batch object does not claim one of them."""
    times = [line.event_time_ns for line in lines]
    return {
        "projectid": first["projectid"],
        "destinationid": first["destinationid"],
        "event-id": first["event-id"],
        "timestamp": first["timestamp"],
        "batch-count": str(len(lines)),
        "batch-first-event-time": rfc3339_nano(min(times)),
        "batch-last-event-time": rfc3339_nano(max(times)),
    }
