"""Build the S3 request of one message: key, metadata and body, from what ingest stamped.

Everything here is derived from the stored message (event-id, event time, body), never
from the attempt, so every retry writes the same object. `build_request` is the one
request builder: the worker, `s3dest put` and the connection test all use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from s3dest.errors import MessageDeliveryError
from s3dest.keys.template import KeyTemplate
from s3dest.messages import EventMetadata
from s3dest.s3.metadata import object_metadata_unchecked


@dataclass(frozen=True, slots=True)
class StoredMessage:
    event_id: str
    project_id: str
    destination_id: str
    event_time_ns: int
    connection_id: str
    topic: str
    body: bytes | None  # compact {"data": ...}; None when chunked (or given as `data`)
    envelope: bytes | None  # chunked messages: data without result


def event_metadata(message: StoredMessage, data: dict[str, Any]) -> EventMetadata:
    return EventMetadata.of(
        data,
        project_id=message.project_id,
        destination_id=message.destination_id,
        event_id=message.event_id,
        event_time_ns=message.event_time_ns,
        connection_id=message.connection_id,
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


def build_request(
    message: StoredMessage, template: KeyTemplate, *, data: dict[str, Any] | None = None
) -> BuiltRequest:
    """Render the key and metadata; KeyRenderError / MessageDeliveryError park the message.

    `data` is the message's data namespace when the caller holds it already (`s3dest put`
    has just validated the file; the connection test writes a fixed object); otherwise it
    is read from the stored body. The metadata is not checked here: the writer checks it
    (`s3.writer.prepare_put`), or the caller with `s3.metadata.check_metadata`.
    """
    if data is None:
        data = message_data(message)
    meta = event_metadata(message, data)
    key = template.render_message(meta, message.event_time_ns, data)
    return BuiltRequest(key=key, metadata=object_metadata_unchecked(meta))
