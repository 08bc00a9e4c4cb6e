"""Salesforce: REST API records and Change Data Capture (CDC) events.

A record from the REST API looks like ``{"attributes": {...}, "Id": ..., "Name": ...}``;
its fields are every top-level key except ``attributes``, lower-cased.

A CDC event carries ``ChangeEventHeader.changeType``; the other top-level keys of the
event are the record's changed fields, and ``ChangeEventHeader.recordIds`` (or
``recordId``) names the record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from s3dest.providers.generic import lowered_fields

HEADER: Final = "ChangeEventHeader"

#: CDC ``changeType`` → normalized subscribe event type.
CHANGE_TYPES: Final[dict[str, str]] = {
    "CREATE": "create",
    "UPDATE": "update",
    "DELETE": "delete",
    "UNDELETE": "create",
    "GAP_CREATE": "create",
    "GAP_UPDATE": "update",
    "GAP_DELETE": "delete",
    "GAP_UNDELETE": "create",
    "GAP_OVERFLOW": "update",
}

#: Where the provider event type sits, relative to the result item.
EVENT_TYPE_PATH: Final = f"rawEvent.{HEADER}.changeType"


def fields_from_raw(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Every top-level key of a REST record except ``attributes``, lower-cased."""
    return lowered_fields((k, v) for k, v in raw.items() if k != "attributes")


def record_id(raw_event: Mapping[str, Any]) -> Any | None:
    """The record id of a CDC event: ``recordIds[0]``, else ``recordId``, else None."""
    header = raw_event.get(HEADER)
    if not isinstance(header, Mapping):
        return None
    ids = header.get("recordIds")
    if isinstance(ids, list) and ids:
        return ids[0]
    return header.get("recordId")


def fields_from_raw_event(raw_event: Mapping[str, Any]) -> dict[str, Any] | None:
    """Fields of a CDC event: ``id`` from the header plus the event's non-header keys.

    None when the event has no ``ChangeEventHeader`` (it is not a CDC event).
    """
    if not isinstance(raw_event.get(HEADER), Mapping):
        return None
    pairs: list[tuple[str, Any]] = []
    rid = record_id(raw_event)
    if rid is not None:
        pairs.append(("id", rid))
    pairs.extend((k, v) for k, v in raw_event.items() if k != HEADER)
    return lowered_fields(pairs)


def provider_event_type(raw_event: Mapping[str, Any]) -> tuple[bool, Any]:
    """(found, value) of ``ChangeEventHeader.changeType`` in a CDC event."""
    header = raw_event.get(HEADER)
    if not isinstance(header, Mapping) or "changeType" not in header:
        return False, None
    return True, header["changeType"]


def map_event_type(provider_type: str) -> str | None:
    """The normalized event type of a CDC ``changeType`` (any case), or None if unknown."""
    return CHANGE_TYPES.get(provider_type.upper())
