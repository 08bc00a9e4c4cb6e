"""HubSpot: CRM v3 objects and webhook events.

A CRM v3 object looks like ``{"id": "438", "properties": {...}, "createdAt": ...,
"updatedAt": ..., "archived": false}``; its fields are ``id`` plus each property.

A webhook event carries ``subscriptionType`` = ``<objectType>.<event>``
(``contact.creation``, ``deal.propertyChange``, ``object.deletion``…), ``objectId`` and,
for property changes, ``propertyName`` / ``propertyValue``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from s3dest.providers.generic import lowered_fields

#: The part of ``subscriptionType`` after the last dot → normalized subscribe event type.
EVENT_SUFFIXES: Final[dict[str, str]] = {
    "creation": "create",
    "propertyChange": "update",
    "deletion": "delete",
    "privacyDeletion": "delete",
    "associationChange": "associationUpdate",
    "merge": "update",
    "restore": "create",
}
_BY_LOWER: Final = {k.lower(): v for k, v in EVENT_SUFFIXES.items()}

#: Where the provider event type sits, relative to the result item.
EVENT_TYPE_PATH: Final = "rawEvent.subscriptionType"


def fields_from_raw(raw: Mapping[str, Any]) -> dict[str, Any] | None:
    """``id`` plus each property, lower-cased; None if `raw` is not a CRM v3 object."""
    properties = raw.get("properties")
    if not isinstance(properties, Mapping):
        return None
    pairs: list[tuple[str, Any]] = []
    if "id" in raw:
        pairs.append(("id", raw["id"]))
    pairs.extend(properties.items())
    return lowered_fields(pairs)


def fields_from_raw_event(raw_event: Mapping[str, Any]) -> dict[str, Any] | None:
    """Fields of a webhook event: ``id`` (``objectId`` as a string, as the CRM API spells
    ids) plus, for a property change, ``propertyName: propertyValue``.

    None when the event has no ``objectId``.
    """
    if raw_event.get("objectId") is None:
        return None
    object_id = raw_event["objectId"]
    pairs: list[tuple[str, Any]] = [
        ("id", object_id if isinstance(object_id, str) else str(object_id))
    ]
    name = raw_event.get("propertyName")
    if isinstance(name, str) and name:
        pairs.append((name, raw_event.get("propertyValue")))
    return lowered_fields(pairs)


def provider_event_type(raw_event: Mapping[str, Any]) -> tuple[bool, Any]:
    """(found, value) of ``subscriptionType`` in a webhook event."""
    if "subscriptionType" not in raw_event:
        return False, None
    return True, raw_event["subscriptionType"]


def map_event_type(provider_type: str) -> str | None:
    """The normalized event type of a ``subscriptionType``, or None if unknown.

    Any object-type prefix is accepted (``contact.``, ``company.``, ``deal.``,
    ``ticket.``, ``object.``, ``p123_custom.``…); the event part is matched ignoring case.
    """
    prefix, dot, suffix = provider_type.rpartition(".")
    if not dot or not prefix:
        return None
    return _BY_LOWER.get(suffix.lower())
