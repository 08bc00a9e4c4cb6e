"""Structured logs: one JSON object per line. Never pass secrets here."""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None)))

# Set by the API's middleware for the duration of a request.
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "s3dest_request_id", default=None
)


def _json_line(
    created: float, level: int, logger_name: str, msg: str, fields: Mapping[str, Any]
) -> str:
    entry: dict[str, Any] = {
        "ts": round(created, 6),
        "level": logging.getLevelName(level).lower(),
        "logger": logger_name,
        "msg": msg,
    }
    request_id = request_id_var.get()
    if request_id is not None:
        entry["requestId"] = request_id
    entry.update(fields)
    return orjson.dumps(entry, default=str).decode()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = {
            key: value
            for key, value in vars(record).items()
            if key not in _RESERVED and not key.startswith("_")
        }
        if record.exc_info and record.exc_info[0] is not None:
            fields["exc"] = record.exc_info[0].__name__
        return _json_line(record.created, record.levelno, record.name, record.getMessage(), fields)


class _JsonStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler `configure` installs; `log_batch` writes to it directly."""


@dataclass(frozen=True, slots=True)
class BatchEntry:
    """One record of a batch: its level, message, time and fields (as `extra=`)."""

    level: int
    msg: str
    created: float
    fields: Mapping[str, Any]


def log_batch(logger: logging.Logger, entries: Sequence[BatchEntry]) -> None:
    """Write many records from one thread at once: the worker's one line per delivery.

    Logged one by one from the sender threads, each line cost a record, the handler's lock
    and a write to stderr on a thread that should be sending; 32 threads queued on that
    lock. Here the lines are formatted in one pass and written with one call. Records go
    through the ordinary logging path whenever the configuration is not the one
    `configure` installs (other handlers, filters), so nothing configured is bypassed.
    """
    entries = [e for e in entries if logger.isEnabledFor(e.level)]
    if not entries:
        return
    handler = _only_json_handler(logger)
    if handler is None:
        for e in entries:
            record = logger.makeRecord(
                logger.name, e.level, "(unknown file)", 0, e.msg, (), None, extra=dict(e.fields)
            )
            record.created = e.created
            logger.handle(record)
        return
    text = "".join(
        _json_line(e.created, e.level, logger.name, e.msg, e.fields) + handler.terminator
        for e in entries
        if e.level >= handler.level
    )
    if not text:
        return
    handler.acquire()
    try:
        handler.stream.write(text)
        handler.flush()
    finally:
        handler.release()


def _only_json_handler(logger: logging.Logger) -> _JsonStreamHandler | None:
    """The one handler a record of `logger` would reach, if it is `configure`'s and
    nothing on the way filters; otherwise None."""
    found: _JsonStreamHandler | None = None
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters or current.disabled:
            return None
        for handler in current.handlers:
            if found is not None or type(handler) is not _JsonStreamHandler or handler.filters:
                return None
            found = handler
        if not current.propagate:
            break
        current = current.parent
    return found


def configure(level: str = "INFO") -> None:
    # A log line here carries no source location, thread or process name: skip gathering
    # them (walking the stack for the caller costs a third of a record, and the service
    # writes one record per delivery).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = _JsonStreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access", "httpx", "httpcore", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
