"""The object of one batch (s3/batch.py): JSON Lines, compressed the same way every time,
named from the first message's key, with metadata describing the batch."""

from __future__ import annotations

import gzip
from dataclasses import dataclass

import pytest
import zstandard

from s3dest.s3 import batch


@dataclass(frozen=True)
class _Line:
    event_id: str
    event_time_ns: int
    body: bytes


LINES = [
    _Line(f"e-{i}", 1_760_410_739_323_405_308 + i * 1000, b'{"data":{"n":%d}}' % i)
    for i in range(300)
]


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_the_same_lines_give_the_same_bytes_and_decode_to_the_bodies(compression: str) -> None:
    first = batch.batch_body(LINES, compression)  # type: ignore[arg-type]
    again = batch.batch_body(list(LINES), compression)  # type: ignore[arg-type]
    assert first == again  # a retry writes the same object
    raw = (
        gzip.decompress(first)
        if compression == "gzip"
        else zstandard.ZstdDecompressor().decompress(first)
        if compression == "zstd"
        else first
    )
    assert raw.split(b"\n") == [line.body for line in LINES] + [b""]
    if compression != "none":
        assert len(first) < len(raw)


def test_the_key_takes_the_format_extension() -> None:
    assert batch.batch_key("2025/a_e-1.json", "gzip") == "2025/a_e-1.jsonl.gz"
    assert batch.batch_key("2025/a_e-1.json", "zstd") == "2025/a_e-1.jsonl.zst"
    assert batch.batch_key("2025/a_e-1.json", "none") == "2025/a_e-1.jsonl"
    assert batch.batch_key("contacts/e-1", "gzip") == "contacts/e-1.jsonl.gz"
    assert batch.content_encoding("gzip") == "gzip"
    assert batch.content_encoding("none") is None


def test_the_metadata_describes_the_batch_and_its_first_message() -> None:
    first = {
        "projectid": "p",
        "destinationid": "d",
        "event-id": "e-0",
        "timestamp": "1760410739",
        "installationid": "inst-1",
        "operationid": "op",
    }
    meta = batch.batch_metadata(first, LINES)
    assert meta == {
        "projectid": "p",
        "destinationid": "d",
        "event-id": "e-0",
        "timestamp": "1760410739",
        "batch-count": "300",
        "batch-first-event-time": "2025-10-14T02:58:59.323405308Z",
        "batch-last-event-time": "2025-10-14T02:58:59.323704308Z",
    }
