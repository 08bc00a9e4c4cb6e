"""The JSON log lines: the worker's batched lines read exactly like ordinary records, and
a batch never bypasses a configured filter or handler."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from s3dest import logs


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """`logs.configure` writing to a StringIO; the root logger restored afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    logs.configure("INFO")
    out = io.StringIO()
    (handler,) = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(out)
    try:
        yield out
    finally:
        root.handlers[:], root.level = saved


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


FIELDS = {"eventId": "e-1", "key": "a/b.json", "attempt": 1, "latencyMs": 12.5}


def test_batch_lines_match_single_records(stream: io.StringIO) -> None:
    log = logging.getLogger("s3dest.delivery")
    log.info("delivered", extra=FIELDS)
    logs.log_batch(
        log,
        [
            logs.BatchEntry(logging.INFO, "delivered", 1_800_000_000.25, FIELDS),
            logs.BatchEntry(logging.WARNING, "parked", 1_800_000_001.5, {"eventId": "e-2"}),
            logs.BatchEntry(logging.DEBUG, "hidden", 1_800_000_002.0, {"eventId": "e-3"}),
        ],
    )
    single, batched, parked = lines(stream)  # the DEBUG entry is below the level
    assert {k: v for k, v in single.items() if k != "ts"} == {
        k: v for k, v in batched.items() if k != "ts"
    }
    assert batched == {
        "ts": 1_800_000_000.25,
        "level": "info",
        "logger": "s3dest.delivery",
        "msg": "delivered",
        **FIELDS,
    }
    assert parked["level"] == "warning" and parked["eventId"] == "e-2"


def test_batch_goes_through_filters_and_other_handlers(stream: io.StringIO) -> None:
    log = logging.getLogger("s3dest.delivery")
    captured: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            captured.append(record)

    extra = Keep()
    log.addHandler(extra)
    log.addFilter(lambda record: record.getMessage() != "dropped")
    try:
        logs.log_batch(
            log,
            [
                logs.BatchEntry(logging.INFO, "dropped", 1_800_000_000.0, {"eventId": "e-1"}),
                logs.BatchEntry(logging.INFO, "kept", 1_800_000_003.0, {"eventId": "e-2"}),
            ],
        )
    finally:
        log.removeHandler(extra)
        log.filters.clear()
    assert [r.getMessage() for r in captured] == ["kept"]
    assert captured[0].created == 1_800_000_003.0
    assert [(e["msg"], e["eventId"], e["ts"]) for e in lines(stream)] == [
        ("kept", "e-2", 1_800_000_003.0)
    ]


def test_nothing_written_when_the_level_is_off(stream: io.StringIO) -> None:
    logging.getLogger().setLevel(logging.WARNING)
    logs.log_batch(
        logging.getLogger("s3dest.delivery"),
        [logs.BatchEntry(logging.INFO, "delivered", 1_800_000_000.0, FIELDS)],
    )
    assert stream.getvalue() == ""
