"""A destination's batching settings (SPEC §9): many messages in one object, opt-in.

A destination with `batch` set gets its messages grouped into JSON Lines objects: the queue
seals a batch (store/queue/batches.py) when it has `max_messages` messages, `max_bytes` of
bodies, or its oldest message has waited `max_seconds`; the membership is then fixed in the
database, so every retry of the batch writes the same lines to the same key
(s3/batch.py builds that object). Without `batch`, a destination writes one object per
message, exactly as the product page says.

This module is the settings only (no I/O), so the store, the rules and the worker share one
definition of them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

Compression = Literal["gzip", "zstd", "none"]
COMPRESSIONS: tuple[Compression, ...] = ("gzip", "zstd", "none")
FORMATS = ("jsonl",)

# Bounds, and why: a batch is built in memory by its sender thread (the compressed object
# whole, the lines one at a time), so `max_bytes` bounds a worker's memory per batch in
# flight; 10,000 lines keep one seal (one transaction) short on SQLite's single write lock;
# an hour is the longest a message may wait for its batch to fill.
MAX_MESSAGES_RANGE = (1, 10_000)
MAX_BYTES_RANGE = (1024, 64 * 1024 * 1024)
MAX_SECONDS_RANGE = (0.1, 3600.0)

DEFAULT_MAX_MESSAGES = 1000
DEFAULT_MAX_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class BatchSettings:
    max_messages: int = DEFAULT_MAX_MESSAGES
    max_bytes: int = DEFAULT_MAX_BYTES
    max_seconds: float = DEFAULT_MAX_SECONDS
    format: str = "jsonl"
    compression: Compression = "gzip"

    def to_api(self) -> dict[str, Any]:
        """The API's camelCase object (also what the database stores, as JSON text)."""
        return {
            "maxMessages": self.max_messages,
            "maxBytes": self.max_bytes,
            "maxSeconds": self.max_seconds,
            "format": self.format,
            "compression": self.compression,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_api(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> BatchSettings | None:
        """The stored column (NULL: the destination does not batch)."""
        if not text:
            return None
        raw = json.loads(text)
        return cls(
            max_messages=int(raw["maxMessages"]),
            max_bytes=int(raw["maxBytes"]),
            max_seconds=float(raw["maxSeconds"]),
            format=str(raw.get("format", "jsonl")),
            compression=raw.get("compression", "gzip"),
        )
