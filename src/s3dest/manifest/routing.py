"""Which fields an object selects, and the route table of a manifest.

Object names match case-insensitively and also by the object's ``mapToName`` (a message
about a Salesforce ``account`` mapped to ``company`` says ``objectName: company``).

Selected fields are the ``fieldName``s of requiredFields + optionalFields (for a
``$['a']['b']`` / ``$.a.b`` JSONPath, the top-level ``a``); a subscribe object with
``inheritFieldsAndMapping: true`` adds those of the read object of the same name. The
selection is empty — keep every field — when the object has none, when
``optionalFieldsAuto: all`` lets the consumer pick any field, or when an entry has no
``fieldName`` (the consumer maps it at install time, so which raw field it is is unknown).
"""

from __future__ import annotations

import re
from typing import Final

from s3dest.manifest.model import FieldRef, Integration, RouteTarget

_JSONPATH_TOP: Final = re.compile(r"^\$(?:\.([^.\[\]]+)|\[\s*['\"]([^'\"]+)['\"]\s*\])")


def top_level_field(name: str) -> str:
    match = _JSONPATH_TOP.match(name)
    if match:
        return (match.group(1) or match.group(2)).lower()
    return name.lower()


def selection(refs: tuple[FieldRef, ...], auto: str | None) -> frozenset[str] | None:
    """Lower-cased selected field names; None when the selection is open (keep all)."""
    if auto == "all":
        return None
    names: set[str] = set()
    for ref in refs:
        if ref.field_name is None:
            return None
        names.add(top_level_field(ref.field_name))
    return frozenset(names)


def route_table(integrations: list[Integration]) -> dict[tuple[str, str, str], RouteTarget]:
    """(integration, action, lower-cased object name or mapToName) -> target."""
    routes: dict[tuple[str, str, str], RouteTarget] = {}
    aliases: list[tuple[tuple[str, str, str], RouteTarget]] = []
    for integ in integrations:
        for obj in integ.objects():
            target = RouteTarget(
                destination=obj.destination,
                selected_fields=obj.selected_fields,
                integration=integ.name,
                provider=integ.provider,
                action=obj.action,
                object_name=obj.object_name,
            )
            routes[(integ.name, obj.action, obj.object_name.lower())] = target
            if obj.map_to_name:
                aliases.append(((integ.name, obj.action, obj.map_to_name.lower()), target))
    for key, target in aliases:  # an objectName always wins over another object's mapToName
        routes.setdefault(key, target)
    return routes
