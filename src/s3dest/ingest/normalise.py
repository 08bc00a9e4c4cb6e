"""Check, normalise and shape one message of ordinary size into its queue row."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from s3dest.errors import MessageInvalid
from s3dest.ingest.envelope import ProjectView, check_envelope, queue_row, summary
from s3dest.messages import (
    DATA_FIELDS,
    SUBSCRIBE_EVENT_TYPES,
    IncomingMessage,
    ResultItem,
    check_complete,
    data_dict,
    encode_body,
)
from s3dest.messages import parse_incoming as parse_envelope
from s3dest.providers import normalize_result


@dataclass(frozen=True, slots=True)
class Prepared:
    row: dict[str, Any]
    destination_id: str


def ordered_data(project_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """The body's data object: action, then projectId (from the API key), then the rest."""
    return {
        "action": data["action"],
        "projectId": project_id,
        **{k: v for k, v in data.items() if k not in ("action", "projectId")},
    }


def prepare(
    project_id: str, raw: Any, view: ProjectView, *, prefix: str = "", now_ns: int | None = None
) -> Prepared:
    """Check and shape one message; raises MessageInvalid naming every bad field."""
    message = parse_envelope(raw, prefix=prefix)
    fields: dict[str, str] = {}
    p = prefix + "." if prefix else ""
    routed = check_envelope(project_id, message, view, p, fields)
    # Normalised from the items as received: once validated (extra fields forbidden), a
    # plain dict item holds exactly what its model's dump(exclude_unset=True) would, and
    # normalize_result reads it by key, so the dump is not needed. Anything else (a
    # caller passing models, tuples…) goes through the models' dumps.
    given = raw["result"]
    plain = type(given) is list and all(type(item) is dict for item in given)
    result: list[dict[str, Any]] = []
    for i, item in enumerate(given if plain else message.result):
        try:
            result.append(
                normalize_result(
                    message.provider,
                    message.action,
                    item if plain else item.model_dump(exclude_unset=True),
                    selected_fields=routed.selected,
                    index=i,
                )
            )
        except MessageInvalid as exc:
            fields.update({f"{p}{k}": v for k, v in exc.fields.items()})
    data: dict[str, Any] | None = None
    if not fields:
        if _valid_items(message.action, result):
            # What re-validating the normalised message and dumping it would give, built
            # directly: the same keys in the same order, the same values.
            data = _data_of(project_id, message, result)
        else:
            normalized = IncomingMessage.model_validate(
                {**message.model_dump(exclude_unset=True), "result": result}
            )
            # Only on the normalised message: before normalisation an item may lack an
            # event type its rawEvent supplies, and normalize_result already explains a
            # missing one better than this generic check would (which used to overwrite
            # its message).
            try:
                check_complete(normalized, prefix=p)
            except MessageInvalid as exc:
                fields.update(exc.fields)
            data = ordered_data(project_id, data_dict(normalized))
    if fields:
        raise MessageInvalid(summary(fields), fields)
    assert routed.destination is not None and data is not None
    body = encode_body(data)
    row = queue_row(
        project_id, message, routed.destination, body=body, body_size=len(body), now_ns=now_ns
    )
    return Prepared(row=row, destination_id=routed.destination.id)


_SUBSCRIBE_TYPES = frozenset(SUBSCRIBE_EVENT_TYPES)
_ITEM_KEYS = frozenset(ResultItem.model_fields)
_HEAD_FIELDS = tuple(f for f in DATA_FIELDS if f not in ("action", "projectId", "result"))


def _valid_items(action: str, result: list[dict[str, Any]]) -> bool:
    """True when every normalised item is certainly a valid `ResultItem` that passes
    `check_complete`, and is already as its model would dump it (keys in field order).

    normalize_result writes ``fields`` (an object), then for subscribe the event types,
    then ``raw`` and ``rawEvent`` as given (already validated); only the event types can
    come from a raw event and so be of any JSON type. When in doubt: False, and the
    caller re-validates the normalised message as it always did.
    """
    for item in result:
        if not isinstance(item.get("fields"), dict):
            return False
        if action == "subscribe":
            if item.get("subscribeEventType") not in _SUBSCRIBE_TYPES:
                return False
            provider_type = item.get("providerEventType")
            if provider_type is not None and type(provider_type) is not str:
                return False
        elif "subscribeEventType" in item or "providerEventType" in item:
            return False
        if not _ITEM_KEYS.issuperset(item):
            return False
    return True


def _data_of(
    project_id: str, message: IncomingMessage, result: list[dict[str, Any]]
) -> dict[str, Any]:
    """The body's data object, as ``ordered_data(project_id, data_dict(normalised))``:
    action, projectId, the page's fields that were given, in the page's order, result."""
    data: dict[str, Any] = {"action": message.action, "projectId": project_id}
    given = message.model_fields_set
    for name in _HEAD_FIELDS:
        if name in given:
            data[name] = getattr(message, name)
    data["result"] = result
    return data
