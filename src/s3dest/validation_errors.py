"""The one translator of pydantic validation errors into s3dest's field messages.

pydantic (and FastAPI's `RequestValidationError`) report errors as dicts with a ``loc``
(where), a ``type`` (what kind) and a ``msg``. Every part of s3dest that shows them —
the REST API's 422 answers, destination bodies from the CLI and the dashboard, ingested
messages, ``s3dest put`` — turns them into ``{field path: sentence}`` here, so a field
is named the same way everywhere. What the sentence says is the caller's: each entity
passes its own `Describe` (a destination explains how to fix a missing bucket; a message
says "required; add it"). Input values are never repeated unless `Describe` does so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

__all__ = ["Describe", "field_messages", "field_path"]

#: (field path, the pydantic error) -> the sentence to show for it.
Describe = Callable[[str, Mapping[str, Any]], str]


def field_path(loc: Sequence[object], *, prefix: str = "", indexed: bool = True) -> str:
    """A pydantic location as a field path: ``result[0].raw`` (``indexed``) or
    ``result.0.raw``, after ``prefix``; "" for the whole input."""
    path = prefix
    for part in loc:
        if indexed and isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def field_messages(
    errors: Iterable[Mapping[str, Any]],
    describe: Describe,
    *,
    root: str,
    prefix: str = "",
    indexed: bool = True,
    request: bool = False,
) -> dict[str, str]:
    """Field path -> message for pydantic's ``errors()``. An error about the whole input
    is filed under ``prefix``, or under ``root`` without one; two errors on one path are
    joined. With ``request``, the errors may be FastAPI's: a leading "body" location is
    dropped, and JSON that does not parse (located at a character offset) is about the
    whole input."""
    fields: dict[str, str] = {}
    for error in errors:
        loc = list(error.get("loc", ()))
        if request and loc and loc[0] == "body":
            loc = loc[1:]
        if request and error.get("type") == "json_invalid":
            loc = []
        path = field_path(loc, prefix=prefix, indexed=indexed) or root
        message = describe(path, error)
        fields[path] = f"{fields[path]} {message}" if path in fields else message
    return fields
