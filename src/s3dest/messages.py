"""Read and subscribe messages, exactly as the product page shows them.

A message is what one S3 object holds: ``{"data": {...}}``. The envelope that arrives at
ingest (`IncomingMessage`) adds routing (`integration`, `destination`) and metadata that
is not part of the body (`connectionId`, `topic`). When s3dest accepts a message it stamps
an `EventStamp` — a UUIDv7 event-id and a nanosecond event time — that never changes
afterwards, so every retry writes the same key, body and metadata.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from s3dest.errors import MessageInvalid
from s3dest.validation_errors import field_messages

Action = Literal["read", "subscribe"]
SubscribeEventType = Literal["create", "update", "delete", "associationUpdate"]
SUBSCRIBE_EVENT_TYPES: tuple[str, ...] = ("create", "update", "delete", "associationUpdate")

# The order of the page's examples; the body is written in this order.
DATA_FIELDS: tuple[str, ...] = (
    "action",
    "projectId",
    "provider",
    "groupRef",
    "groupName",
    "consumerRef",
    "consumerName",
    "installationId",
    "installationUpdateTime",
    "objectName",
    "operationId",
    "operationTime",
    "result",
)


class ResultItem(BaseModel):
    """One record of `result[]`. Subscribe items also carry the event fields."""

    model_config = ConfigDict(extra="forbid")

    fields: dict[str, Any] | None = None
    subscribeEventType: SubscribeEventType | None = None
    providerEventType: str | None = None
    raw: Any = None
    rawEvent: Any = None


class MessageData(BaseModel):
    """The object under ``"data"``: every key field of the page."""

    model_config = ConfigDict(extra="forbid")

    action: Action
    projectId: str | None = None
    provider: str = Field(min_length=1)
    groupRef: str | None = None
    groupName: str | None = None
    consumerRef: str | None = None
    consumerName: str | None = None
    installationId: str = Field(min_length=1)
    installationUpdateTime: str | None = None
    objectName: str = Field(min_length=1)
    operationId: str | None = None
    operationTime: str | None = None
    result: list[ResultItem]


class IncomingMessage(MessageData):
    """A message as producers send it to `POST /v1/messages`."""

    integration: str | None = None
    destination: str | None = None
    connectionId: str | None = None
    topic: str | None = None


def _field_errors(exc: ValidationError, prefix: str = "") -> dict[str, str]:
    return field_messages(exc.errors(), _describe_error, root="message", prefix=prefix)


def _describe_error(_path: str, err: Mapping[str, Any]) -> str:
    """A message field's pydantic error, in the words of the ingest API."""
    if err["type"] == "extra_forbidden":
        return "unknown field; remove it (field names are case-sensitive, as on the page)"
    if err["type"] == "missing":
        return "required; add it"
    if err["type"] == "literal_error":
        return f"{err['msg']}; got {err.get('input')!r}"
    return str(err["msg"])


def _check_subscribe(data: MessageData, prefix: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    if data.action == "subscribe":
        for i, item in enumerate(data.result):
            if item.subscribeEventType is None:
                fields[f"{prefix}result[{i}].subscribeEventType"] = (
                    "required for subscribe messages; one of "
                    + ", ".join(SUBSCRIBE_EVENT_TYPES)
                    + " (or send rawEvent so the provider's event type can be mapped)"
                )
    return fields


def _check_encodable(obj: Any, field: str) -> None:
    # orjson refuses to write JSON nested deeper than 254 levels: find out now, at ingest,
    # rather than when the body is written.
    try:
        orjson.dumps(obj)
    except TypeError as exc:
        raise MessageInvalid(
            "message cannot be stored as JSON",
            {
                field: f"cannot be stored as JSON ({exc}); JSON nested more than 254 levels "
                "deep is refused: flatten it"
            },
        ) from None


def parse_incoming(obj: Any, *, prefix: str = "") -> IncomingMessage:
    """Validate one ingest envelope; MessageInvalid names every bad field."""
    if not isinstance(obj, dict):
        raise MessageInvalid(
            "a message must be a JSON object",
            {prefix or "message": f"expected an object, got {type(obj).__name__}"},
        )
    # Checked as the body will be written, one level deeper: {"data": {...}}.
    _check_encodable({"data": obj}, prefix or "message")
    try:
        return IncomingMessage.model_validate(obj)
    except ValidationError as exc:
        fields = _field_errors(exc, prefix)
        raise MessageInvalid(_summary(fields), fields) from None


def parse_data(obj: Any) -> MessageData:
    """Validate a message body as the page shows it: ``{"data": {...}}``."""
    if not isinstance(obj, dict) or set(obj) != {"data"}:
        raise MessageInvalid(
            'a message file holds {"data": {...}} as on the product page',
            {"data": 'wrap the message in a top-level "data" object and nothing else'},
        )
    _check_encodable(obj, "data")
    try:
        data = MessageData.model_validate(obj["data"])
    except ValidationError as exc:
        fields = _field_errors(exc, "data")
        raise MessageInvalid(_summary(fields), fields) from None
    fields = _check_subscribe(data, "data.")
    if fields:
        raise MessageInvalid(_summary(fields), fields)
    return data


def check_complete(message: MessageData, *, prefix: str = "") -> None:
    """Checks that need the normalised message (after providers filled event types)."""
    fields = _check_subscribe(message, prefix)
    if fields:
        raise MessageInvalid(_summary(fields), fields)


def _summary(fields: dict[str, str]) -> str:
    first = next(iter(fields.items()))
    more = f" (and {len(fields) - 1} more)" if len(fields) > 1 else ""
    return f"invalid message: {first[0]}: {first[1]}{more}"


def data_dict(message: MessageData) -> dict[str, Any]:
    """The body's ``data`` object: the page's fields in the page's order, unset ones omitted."""
    out: dict[str, Any] = {}
    given = message.model_fields_set
    for name in DATA_FIELDS:
        if name == "result":
            out["result"] = [item.model_dump(exclude_unset=True) for item in message.result]
        elif name in given:
            out[name] = getattr(message, name)
    return out


def encode_body(data: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON of ``{"data": data}``, keys in the order given."""
    return orjson.dumps({"data": data})


# ---------------------------------------------------------------------------
# Event metadata: the nine fields of SPEC §2, the same for the key and the object.


def metadata_text(value: Any) -> str:
    """A metadata field's text: "" when unknown (absent or null), else ``str(value)``."""
    return "" if value is None else str(value)


@dataclass(frozen=True, slots=True)
class EventMetadata:
    """The nine metadata fields of a message, as strings ("" when unknown).

    Built with `EventMetadata.of`, which says where each field comes from; the key
    template's ``metadata`` namespace and the object's ``x-amz-meta-*`` headers are both
    made from it.
    """

    projectId: str
    installationId: str
    connectionId: str
    destinationId: str
    operationId: str
    objectName: str
    event_id: str
    timestamp: str
    topic: str

    @classmethod
    def of(
        cls,
        data: Mapping[str, Any],
        *,
        destination_id: str,
        event_id: str,
        event_time_ns: int,
        project_id: str | None = None,
        connection_id: str | None = None,
        topic: str | None = None,
    ) -> EventMetadata:
        """The metadata of one message.

        installationId, operationId and objectName are the message data's; projectId,
        connectionId and topic are the ones given (the API key's project; the envelope's
        fields, which ingest keeps beside the body) or, when not given, data's too (a
        message file, a preview). The timestamp is the event time in Unix seconds.
        """
        get = data.get
        installation_id, operation_id, object_name = (
            get("installationId"),
            get("operationId"),
            get("objectName"),
        )
        # Positional, in field order, and the text of each field inline: ingest builds one
        # per message, and keyword arguments to a frozen dataclass cost a third more.
        return cls(
            metadata_text(get("projectId")) if project_id is None else project_id,
            installation_id if type(installation_id) is str else metadata_text(installation_id),
            metadata_text(get("connectionId")) if connection_id is None else connection_id,
            destination_id,
            operation_id if type(operation_id) is str else metadata_text(operation_id),
            object_name if type(object_name) is str else metadata_text(object_name),
            event_id,
            str(event_time_ns // 1_000_000_000),
            metadata_text(get("topic")) if topic is None else topic,
        )

    def namespace(self) -> dict[str, str]:
        """The key template's ``metadata`` namespace."""
        return {
            "projectId": self.projectId,
            "installationId": self.installationId,
            "connectionId": self.connectionId,
            "destinationId": self.destinationId,
            "operationId": self.operationId,
            "objectName": self.objectName,
            "event-id": self.event_id,
            "timestamp": self.timestamp,
            "topic": self.topic,
        }


# ---------------------------------------------------------------------------
# Event stamp: UUIDv7 event-id and nanosecond event time.


@dataclass(frozen=True, slots=True)
class EventStamp:
    event_id: str
    event_time_ns: int

    @property
    def event_time(self) -> datetime:
        return datetime.fromtimestamp(self.event_time_ns // 1_000_000_000, UTC)


class _UUID7Generator:
    """RFC 9562 UUIDv7, monotonic within a process (12-bit counter in rand_a)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._counter = 0

    def new(self, unix_ms: int) -> str:
        with self._lock:
            if unix_ms <= self._last_ms:
                unix_ms = self._last_ms
                self._counter += 1
                if self._counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                    unix_ms += 1
                    self._counter = 0
            else:
                self._counter = int.from_bytes(os.urandom(2), "big") & 0x3FF
            self._last_ms = unix_ms
            counter = self._counter
        rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
        value = (unix_ms & ((1 << 48) - 1)) << 80
        value |= 0x7 << 76
        value |= counter << 64
        value |= 0b10 << 62
        value |= rand_b
        # str(uuid.UUID(int=value)), without building the UUID object.
        h = f"{value:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_uuid7 = _UUID7Generator()


def new_stamp(now_ns: int | None = None) -> EventStamp:
    """Stamp a message as accepted now."""
    ns = time.time_ns() if now_ns is None else now_ns
    return EventStamp(event_id=_uuid7.new(ns // 1_000_000), event_time_ns=ns)


def uuid7() -> str:
    return _uuid7.new(time.time_ns() // 1_000_000)


def parse_rfc3339_ns(value: str) -> int:
    """Parse an RFC 3339 UTC time with up to nanosecond precision into Unix nanoseconds."""
    text = value.strip()
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    frac_ns = 0
    if "." in text:
        head, rest = text.split(".", 1)
        digits = ""
        while rest and rest[0].isdigit():
            digits += rest[0]
            rest = rest[1:]
        frac_ns = int((digits + "000000000")[:9]) if digits else 0
        text = head + rest
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp()) * 1_000_000_000 + frac_ns
