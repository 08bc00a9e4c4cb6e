"""Build the S3 request of one message: key, metadata and body, from what ingest stamped.

Everything here is derived from the stored message (event-id, event time, body), never
from the attempt, so every retry writes the same object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from s3dest.errors import MessageDeliveryError
from s3dest.keys import EventMetadata, KeyTemplate
from s3dest.s3.metadata import object_metadata_unchecked


@dataclass(frozen=True, slots=True)
class StoredMessage:
    event_id: str
    project_id: str
    destination_id: str
    event_time_ns: int
    connection_id: str
    topic: str
    body: bytes | None  # compact {"data": ...}; None when chunked
    envelope: bytes | None  # chunked messages: data without result


def event_metadata(message: StoredMessage, data: dict[str, Any]) -> EventMetadata:
    def text(name: str) -> str:
        value = data.get(name)
        return "" if value is None else str(value)

    return EventMetadata(
        projectId=message.project_id,
        installationId=text("installationId"),
        connectionId=message.connection_id,
        destinationId=message.destination_id,
        operationId=text("operationId"),
        objectName=text("objectName"),
        event_id=message.event_id,
        timestamp=str(message.event_time_ns // 1_000_000_000),
        topic=message.topic,
    )


def message_data(message: StoredMessage) -> dict[str, Any]:
    """The data namespace: the whole payload, or for chunked bodies all but `result`."""
    try:
        if message.body is not None:
            data = orjson.loads(message.body)["data"]
        elif message.envelope is not None:
            data = orjson.loads(message.envelope)
        else:
            data = {}
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise MessageDeliveryError(f"stored message body is not readable: {exc}") from None
    if not isinstance(data, dict):
        raise MessageDeliveryError("stored message body has no data object")
    return data


@dataclass(frozen=True, slots=True)
class BuiltRequest:
    key: str
    metadata: dict[str, str]


def build_request(message: StoredMessage, template: KeyTemplate) -> BuiltRequest:
    """Render the key and metadata; KeyRenderError / MessageDeliveryError park the message.
    The metadata is checked once, by the writer (`s3.writer.prepare_put`)."""
    data = message_data(message)
    meta = event_metadata(message, data)
    key = template.render_message(meta, message.event_time_ns, data)
    return BuiltRequest(key=key, metadata=object_metadata_unchecked(meta))
