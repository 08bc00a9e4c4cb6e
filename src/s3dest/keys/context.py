"""What a key template is evaluated against: the three namespaces of SPEC §2.

``metadata`` holds the nine event metadata fields (strings), ``time`` the message's event
time (UTC, zero-padded strings) and ``data`` the message payload. The time is the one
stamped at ingest, never the attempt's, so every retry renders the same key.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for annotations only: importing s3dest.keys stays free of pydantic
    from s3dest.messages import EventMetadata

METADATA_FIELDS: tuple[str, ...] = (
    "projectId",
    "installationId",
    "connectionId",
    "destinationId",
    "operationId",
    "objectName",
    "event-id",
    "timestamp",
    "topic",
)
TIME_FIELDS: tuple[str, ...] = (
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "second",
    "date",
    "datetime",
    "unix",
    "rfc3339",
    "rfc3339_nano",
)
NAMESPACES = ("metadata", "time", "data")


def time_namespace(event_time_ns: int) -> dict[str, str]:
    seconds, nanos = divmod(event_time_ns, 1_000_000_000)
    dt = datetime.fromtimestamp(seconds, UTC)
    date = f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}"
    clock = f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"
    return {
        "year": f"{dt.year:04d}",
        "month": f"{dt.month:02d}",
        "day": f"{dt.day:02d}",
        "hour": f"{dt.hour:02d}",
        "minute": f"{dt.minute:02d}",
        "second": f"{dt.second:02d}",
        "date": date,
        "datetime": f"{date}T{clock}",
        "unix": str(seconds),
        "rfc3339": f"{date}T{clock}Z",
        "rfc3339_nano": f"{date}T{clock}.{nanos:09d}Z",
    }


def rfc3339_nano(event_time_ns: int) -> str:
    """``time.rfc3339_nano`` of `time_namespace`, alone."""
    seconds, nanos = divmod(event_time_ns, 1_000_000_000)
    dt = datetime.fromtimestamp(seconds, UTC)
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T"
        f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}.{nanos:09d}Z"
    )


def key_context(metadata: EventMetadata, event_time_ns: int, data: Any) -> dict[str, Any]:
    return {
        "metadata": metadata.namespace(),
        "time": time_namespace(event_time_ns),
        "data": data,
    }
