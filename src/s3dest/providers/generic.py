"""Provider-independent helpers: field naming, field selection, error paths.

Every provider module builds a result item's ``fields`` with the same conventions:
names are lower-cased, ``id`` comes first, the rest keep the order of the raw record,
and when the manifest selects fields only those (plus ``id``) are kept.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any, Final

from s3dest.errors import MessageInvalid

#: The normalized event types a subscribe result may carry, as on the product page.
SUBSCRIBE_EVENT_TYPES: Final[tuple[str, ...]] = ("create", "update", "delete", "associationUpdate")


def lowered_fields(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """Fields named in lower case, ``id`` first, otherwise in the order given.

    When two names differ only in case (``Name`` and ``name``) the first one wins, so
    the result never depends on anything but the order of the raw record.
    """
    out: dict[str, Any] = {}
    for key, value in pairs:
        name = str(key).lower()
        if name not in out:
            out[name] = value
    if "id" in out and next(iter(out)) != "id":
        out = {"id": out["id"], **{k: v for k, v in out.items() if k != "id"}}
    return out


def fields_from_raw(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Fields of a record from a provider we have no special rules for: its top-level keys."""
    return lowered_fields(raw.items())


def select_fields(fields: dict[str, Any], selected: Collection[str] | None) -> dict[str, Any]:
    """Keep ``id`` and the selected fields (compared in lower case); no selection keeps all.

    A selected field the record does not carry is left out rather than invented; a field
    the record carries with a null value is kept (null is a value the provider sent).
    """
    if not selected:
        return fields
    wanted = {name.lower() for name in selected}
    return {k: v for k, v in fields.items() if k == "id" or k in wanted}


def require_object(value: Any, path: str, what: str) -> Mapping[str, Any]:
    """`value` as a JSON object, or MessageInvalid naming `path`."""
    if not isinstance(value, Mapping):
        raise MessageInvalid(
            f"{path} must be a JSON object",
            {path: f"{what} must be a JSON object (got {json_type(value)})."},
        )
    return value


def json_type(value: Any) -> str:
    """The JSON name of a Python value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def accepted(values: Iterable[str]) -> str:
    """``'a', 'b' or 'c'`` for an error message."""
    quoted = [f"'{v}'" for v in values]
    if len(quoted) <= 1:
        return "".join(quoted)
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]
