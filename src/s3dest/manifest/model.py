"""A validated amp.yaml as typed, frozen values, and the route lookup it answers.

Routing: ``manifest.route(integration, action, objectName)`` is a dict lookup returning
the destination name and the lower-cased field names the object selects (the table is
built by `s3dest.manifest.routing`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Literal

Action = Literal["read", "subscribe"]
ACTIONS: Final[tuple[Action, ...]] = ("read", "subscribe")


@dataclass(frozen=True, slots=True)
class FieldRef:
    """One entry of requiredFields / optionalFields."""

    field_name: str | None
    map_to_name: str | None = None
    map_to_display_name: str | None = None


@dataclass(frozen=True, slots=True)
class RouteTarget:
    """Where a message goes: a destination by name, and the fields the object selects."""

    destination: str
    selected_fields: frozenset[str]
    integration: str = ""
    provider: str = ""
    action: str = ""
    object_name: str = ""


@dataclass(frozen=True, slots=True)
class ManifestObject:
    """A read or subscribe object of an integration."""

    action: Action
    object_name: str
    destination: str
    path: str  # "integrations[0].read.objects[1]"
    line: int  # of the object; 1-based
    destination_line: int
    destination_column: int
    required_fields: tuple[FieldRef, ...]
    optional_fields: tuple[FieldRef, ...]
    optional_fields_auto: str | None
    schedule: str | None
    map_to_name: str | None
    map_to_display_name: str | None
    inherit_fields_and_mapping: bool
    selected_fields: frozenset[str]
    raw: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Integration:
    name: str
    display_name: str | None
    provider: str
    module: str | None
    read: tuple[ManifestObject, ...]
    subscribe: tuple[ManifestObject, ...]
    line: int
    raw: dict[str, Any]

    def objects(self) -> Iterator[ManifestObject]:
        yield from self.read
        yield from self.subscribe


@dataclass(frozen=True, slots=True)
class Manifest:
    """A validated amp.yaml. `text` is the document exactly as it was sent."""

    text: str
    spec_version: str
    integrations: tuple[Integration, ...]
    _document: dict[str, Any] = field(repr=False)
    _routes: dict[tuple[str, str, str], RouteTarget] = field(repr=False)

    def route(self, integration: str, action: str, object_name: str) -> RouteTarget | None:
        """The target of (integration, action, objectName), or None if not routed here."""
        return self._routes.get((integration, action, object_name.lower()))

    def integration(self, name: str) -> Integration | None:
        for integ in self.integrations:
            if integ.name == name:
                return integ
        return None

    def objects(self) -> Iterator[ManifestObject]:
        for integ in self.integrations:
            yield from integ.objects()

    def destination_names(self) -> frozenset[str]:
        """Every destination name the manifest refers to."""
        return frozenset(obj.destination for obj in self.objects())

    def to_dict(self) -> dict[str, Any]:
        """The document as plain JSON-able data (a copy; YAML timestamps become strings)."""
        return copy.deepcopy(self._document)
