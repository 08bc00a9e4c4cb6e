"""Turn a producer's result item into the item s3dest writes, the page's way.

`normalize_result` is the one entry point. It is pure: no I/O, no clock, and it does
not copy values it passes through (the returned dict shares ``raw``, ``rawEvent`` and
a given ``fields`` with the input).

The rules, per provider, are in docs/providers.md:

- ``fields`` given → kept exactly as given. Otherwise built from ``raw``: HubSpot CRM
  objects give ``id`` plus each property; Salesforce records give every top-level key
  but ``attributes``; any other provider gives the top-level keys. Names are lower-cased
  and ``id`` comes first. For a Salesforce (or HubSpot) subscribe item without ``raw``
  the fields come from the ``rawEvent``.
- ``selected_fields`` (the manifest's required + optional field names) keeps only those
  fields plus ``id``; it never applies to given ``fields``.
- subscribe: ``subscribeEventType`` / ``providerEventType`` derived from ``rawEvent``
  (Salesforce CDC ``ChangeEventHeader.changeType``, HubSpot ``subscriptionType``) unless
  given.
- Output key order: ``fields``, [``subscribeEventType``, ``providerEventType``], ``raw``,
  ``rawEvent``, then any other keys of the item, unchanged, in their order.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from s3dest.errors import MessageInvalid
from s3dest.providers import generic, hubspot, salesforce
from s3dest.providers.generic import SUBSCRIBE_EVENT_TYPES, accepted, json_type, require_object

__all__ = ["SUBSCRIBE_EVENT_TYPES", "normalize_result", "provider_event_types"]

_KNOWN_KEYS: Final = ("fields", "subscribeEventType", "providerEventType", "raw", "rawEvent")


@dataclass(frozen=True, slots=True)
class _EventRules:
    """How one provider's raw events name their type."""

    label: str  # "Salesforce changeType"
    path: str  # relative to the result item
    find: Callable[[Mapping[str, Any]], tuple[bool, Any]]
    mapping: Callable[[str], str | None]
    accepted: tuple[str, ...]


_SALESFORCE_EVENTS: Final = _EventRules(
    "Salesforce changeType",
    salesforce.EVENT_TYPE_PATH,
    salesforce.provider_event_type,
    salesforce.map_event_type,
    tuple(salesforce.CHANGE_TYPES),
)
_HUBSPOT_EVENTS: Final = _EventRules(
    "HubSpot subscriptionType",
    hubspot.EVENT_TYPE_PATH,
    hubspot.provider_event_type,
    hubspot.map_event_type,
    tuple(f"<objectType>.{suffix}" for suffix in hubspot.EVENT_SUFFIXES),
)


def provider_event_types(provider: str) -> dict[str, str]:
    """The provider's event type table (provider value → normalized), for docs and UIs.

    HubSpot's keys are the part after the object type (``creation`` for
    ``contact.creation``); unknown providers have an empty table.
    """
    key = provider.lower()
    if key == "salesforce":
        return dict(salesforce.CHANGE_TYPES)
    if key == "hubspot":
        return dict(hubspot.EVENT_SUFFIXES)
    return {}


def normalize_result(
    provider: str,
    action: Literal["read", "subscribe"],
    item: dict[str, Any],
    *,
    selected_fields: Collection[str] | None,
    index: int = 0,
) -> dict[str, Any]:
    """The result item to write for one item of a message's ``result`` array.

    `provider` is the message's provider (``hubspot``, ``salesforce``… any case);
    `selected_fields` the lower-cased field names the manifest selects for the object
    (None or empty: keep every field); `index` the item's position in ``result``, used
    in error paths such as ``result[2].rawEvent``.

    Raises MessageInvalid naming the offending field when the item has neither usable
    ``fields`` nor ``raw`` (nor, for subscribe, a readable ``rawEvent``), or when a
    subscribe item's event type is missing or not one the provider is known to send.
    """
    base = f"result[{index}]"
    record = require_object(item, base, "Each item of result")
    kind = provider.lower()

    event_type: str | None = None
    provider_type: Any | None = None
    if action == "subscribe":
        event_type, provider_type = _event_types(kind, record, base)
    elif action != "read":
        raise MessageInvalid(
            f"unknown action {action!r}",
            {"action": f"action must be 'read' or 'subscribe' (got {action!r})."},
        )

    out: dict[str, Any] = {"fields": _fields(kind, action, record, base, selected_fields)}
    if action == "subscribe":
        out["subscribeEventType"] = event_type
        if provider_type is not None:
            out["providerEventType"] = provider_type
    for key in ("raw", "rawEvent"):
        if key in record:
            out[key] = record[key]
    for key, value in record.items():
        if key not in _KNOWN_KEYS:
            out[key] = value
    return out


# -- fields ---------------------------------------------------------------------------


def _fields(
    kind: str,
    action: str,
    record: Mapping[str, Any],
    base: str,
    selected: Collection[str] | None,
) -> Any:
    if "fields" in record:
        given = record["fields"]
        require_object(given, f"{base}.fields", "fields")
        return given  # kept exactly as given: no renaming, no selection
    if "raw" in record:
        raw = require_object(record["raw"], f"{base}.raw", "raw (the provider's record)")
        built: dict[str, Any] | None = None
        if kind == "hubspot":
            built = hubspot.fields_from_raw(raw)
        elif kind == "salesforce":
            built = salesforce.fields_from_raw(raw)
        if built is None:
            built = generic.fields_from_raw(raw)
        return generic.select_fields(built, selected)
    if action == "subscribe" and isinstance(record.get("rawEvent"), Mapping):
        raw_event: Mapping[str, Any] = record["rawEvent"]
        from_event: dict[str, Any] | None = None
        if kind == "salesforce":
            from_event = salesforce.fields_from_raw_event(raw_event)
        elif kind == "hubspot":
            from_event = hubspot.fields_from_raw_event(raw_event)
        if from_event is not None:
            return generic.select_fields(from_event, selected)
    hint = (
        "Send the record as `raw` (the provider's API response) or the normalized `fields` object"
    )
    if action == "subscribe" and kind in ("salesforce", "hubspot"):
        hint += (
            ", or a `rawEvent` s3dest can read fields from (a Salesforce Change Data Capture"
            " event with ChangeEventHeader, a HubSpot webhook event with objectId)"
        )
    raise MessageInvalid(
        f"{base} has no record data: neither fields nor raw",
        {f"{base}.raw": f"{hint}."},
    )


# -- subscribe event types --------------------------------------------------------------


def _rules_for(kind: str, raw_event: Any) -> _EventRules | None:
    if kind == "salesforce":
        return _SALESFORCE_EVENTS
    if kind == "hubspot":
        return _HUBSPOT_EVENTS
    # Another provider: recognise the two event shapes we know by their keys.
    if isinstance(raw_event, Mapping):
        if salesforce.HEADER in raw_event:
            return _SALESFORCE_EVENTS
        if "subscriptionType" in raw_event:
            return _HUBSPOT_EVENTS
    return None


def _event_types(kind: str, record: Mapping[str, Any], base: str) -> tuple[str, Any | None]:
    """(subscribeEventType, providerEventType or None) for a subscribe item."""
    given = record.get("subscribeEventType")
    has_provider_type = "providerEventType" in record
    given_provider = record.get("providerEventType")
    raw_event = record.get("rawEvent")
    rules = _rules_for(kind, raw_event)

    found, from_event = False, None
    if rules is not None and isinstance(raw_event, Mapping):
        found, from_event = rules.find(raw_event)
    provider_type = given_provider if has_provider_type else (from_event if found else None)

    if given is not None:
        if given not in SUBSCRIBE_EVENT_TYPES:
            path = f"{base}.subscribeEventType"
            raise MessageInvalid(
                f"{path}: unknown subscribe event type {given!r}",
                {
                    path: f"subscribeEventType must be {accepted(SUBSCRIBE_EVENT_TYPES)}"
                    f" (got {given!r}); or leave it out to derive it from rawEvent."
                },
            )
        return given, provider_type

    accepted_normalized = accepted(SUBSCRIBE_EVENT_TYPES)
    if rules is not None and found:
        return _map(rules, from_event, f"{base}.{rules.path}"), provider_type
    if rules is not None and isinstance(given_provider, str):
        return _map(rules, given_provider, f"{base}.providerEventType"), provider_type

    # Nothing to derive the type from: say what would work.
    if rules is not None and raw_event is not None:
        path = f"{base}.{rules.path}"
        if not isinstance(raw_event, Mapping):
            problem = f"rawEvent is {json_type(raw_event)}, not the provider's event object"
        else:
            problem = f"the rawEvent has no {rules.label}"
        raise MessageInvalid(
            f"{base}: cannot tell the subscribe event type: {problem}",
            {
                path: f"Missing: {problem}. Send the provider's event (its {rules.label} is one"
                f" of {accepted(rules.accepted)}) or set subscribeEventType to"
                f" {accepted_normalized}."
            },
        )
    path = f"{base}.subscribeEventType"
    raise MessageInvalid(
        f"{base}: cannot tell the subscribe event type",
        {
            path: f"Required for a subscribe result when there is no rawEvent s3dest can read"
            f" (a Salesforce Change Data Capture event or a HubSpot webhook event): set it to"
            f" {accepted_normalized}."
        },
    )


def _map(rules: _EventRules, value: Any, path: str) -> str:
    mapped = rules.mapping(value) if isinstance(value, str) else None
    if mapped is None:
        raise MessageInvalid(
            f"{path}: unknown {rules.label} {value!r}",
            {
                path: f"Unknown {rules.label} {value!r}; accepted: {accepted(rules.accepted)}."
                f" Or set subscribeEventType to {accepted(SUBSCRIBE_EVENT_TYPES)}."
            },
        )
    return mapped
