"""The amp.yaml manifest: parse, validate with line numbers, route messages.

``parse_manifest`` reads an amp.yaml (or the same document as JSON), checks it against
the schema below and returns a `Manifest`. Every problem is reported — all of them, in
one `ManifestInvalid` — with the 1-based line and column it sits at::

    amp.yaml line 7, column 11: unknown key 'destinaton' in integrations[0].read.objects[0];
    allowed: objectName, destination, ...

Schema (``specVersion: 1.0.0``)::

    specVersion: 1.0.0                       required, exactly "1.0.0"
    integrations:                            required, at least one
      - name: salesforceToS3                 required, unique
        displayName: Salesforce to S3
        provider: salesforce                 required
        module: crm
        read:     {objects: [<object>, ...]}  read and/or subscribe: at least one
        subscribe: {objects: [<object>, ...]}
        write: {...}                         stored as given (s3dest does not write)
        proxy: {...}                         stored as given

    <object>:
      objectName: account                    required, unique per action
      destination: ampersandS3Bucket         required: the name of an s3dest destination
      requiredFields / optionalFields:       [{fieldName: x} | {fieldName, mapToName,
                                               mapToDisplayName} | {mapToName, prompt, ...}]
      optionalFieldsAuto: all
      schedule: "*/10 * * * *"
      backfill: {defaultPeriod: {days: 30}} | {defaultPeriod: {fullHistory: true}}
                | {fullHistory: true}
      mapToName, mapToDisplayName, delivery: {mode, pageSize}, enabled
      # subscribe objects also:
      inheritFieldsAndMapping: true
      createEvent / deleteEvent: {enabled: always|never}
      updateEvent: {enabled, watchFieldsAuto: all, requiredWatchFields: [...]}
      associationChangeEvent: {enabled, includeFullRecords}
      otherEvents: [string, ...]

Routing: ``manifest.route(integration, action, objectName)`` is a dict lookup returning
the destination name and the lower-cased field names the object selects. Object names
match case-insensitively and also by the object's ``mapToName`` (a message about a
Salesforce ``account`` mapped to ``company`` says ``objectName: company``).

Selected fields are the ``fieldName``s of requiredFields + optionalFields (for a
``$['a']['b']`` / ``$.a.b`` JSONPath, the top-level ``a``); a subscribe object with
``inheritFieldsAndMapping: true`` adds those of the read object of the same name. The
selection is empty — keep every field — when the object has none, when
``optionalFieldsAuto: all`` lets the consumer pick any field, or when an entry has no
``fieldName`` (the consumer maps it at install time, so which raw field it is is unknown).
"""

from __future__ import annotations

import copy
import datetime as dt
import difflib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from s3dest.errors import ManifestInvalid

__all__ = [
    "SPEC_VERSION",
    "FieldRef",
    "Integration",
    "Manifest",
    "ManifestObject",
    "RouteTarget",
    "parse_manifest",
    "validate_destinations",
]

SPEC_VERSION: Final = "1.0.0"
SOURCE: Final = "amp.yaml"
#: Most values the document may hold once YAML aliases are expanded (billion laughs).
MAX_VALUES: Final = 200_000

Action = Literal["read", "subscribe"]
ACTIONS: Final[tuple[Action, ...]] = ("read", "subscribe")

ROOT_KEYS: Final = ("specVersion", "integrations")
INTEGRATION_KEYS: Final = (
    "name",
    "displayName",
    "provider",
    "module",
    "read",
    "subscribe",
    "write",
    "proxy",
)
SECTION_KEYS: Final = ("objects",)
READ_OBJECT_KEYS: Final = (
    "objectName",
    "destination",
    "requiredFields",
    "optionalFields",
    "optionalFieldsAuto",
    "schedule",
    "backfill",
    "mapToName",
    "mapToDisplayName",
    "delivery",
    "enabled",
)
SUBSCRIBE_OBJECT_KEYS: Final = (
    *READ_OBJECT_KEYS,
    "inheritFieldsAndMapping",
    "createEvent",
    "updateEvent",
    "deleteEvent",
    "associationChangeEvent",
    "otherEvents",
)
FIELD_KEYS: Final = (
    "fieldName",
    "mapToName",
    "mapToDisplayName",
    "prompt",
    "default",
    "mappedValues",
)
BACKFILL_KEYS: Final = ("defaultPeriod", "fullHistory")
DEFAULT_PERIOD_KEYS: Final = ("days", "fullHistory")
DELIVERY_KEYS: Final = ("mode", "pageSize")
DELIVERY_MODES: Final = ("auto", "onRequest")
EVENT_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "createEvent": ("enabled",),
    "updateEvent": ("enabled", "watchFieldsAuto", "requiredWatchFields"),
    "deleteEvent": ("enabled",),
    "associationChangeEvent": ("enabled", "includeFullRecords"),
}
EVENT_ENABLED: Final = ("always", "never")

_JSONPATH_TOP: Final = re.compile(r"^\$(?:\.([^.\[\]]+)|\[\s*['\"]([^'\"]+)['\"]\s*\])")


# -- the model ---------------------------------------------------------------------------


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


# -- errors ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Problem:
    path: str
    line: int
    column: int
    text: str

    @property
    def message(self) -> str:
        text = f"{SOURCE} line {self.line}, column {self.column}: {self.text}"
        # YAML escapes can produce lone surrogates; keep messages valid UTF-8.
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _raise(problems: list[_Problem]) -> None:
    """Raise one ManifestInvalid holding every problem (nothing if there are none)."""
    if problems:
        raise _error(problems)


def _error(problems: list[_Problem]) -> ManifestInvalid:
    problems = sorted(problems, key=lambda p: (p.line, p.column))
    fields: dict[str, str] = {}
    for p in problems:
        path = p.path.encode("utf-8", "backslashreplace").decode("utf-8")
        fields[path] = f"{fields[path]}; {p.message}" if path in fields else p.message
    if len(problems) == 1:
        summary = problems[0].message
    else:
        summary = f"{SOURCE} has {len(problems)} errors:\n" + "\n".join(
            f"- {p.message}" for p in problems
        )
    return ManifestInvalid(summary, fields)


# -- parsing -----------------------------------------------------------------------------


def parse_manifest(text: str | bytes) -> Manifest:
    """Parse and validate an amp.yaml (YAML or JSON); raise ManifestInvalid listing every
    problem with its line and column."""
    if isinstance(text, bytes):
        data = text
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
            raise _error([_Problem("manifest", line, column, "is not UTF-8 text")]) from None
    _check_text(text)
    document = _load(text)
    checker = _Checker()
    manifest = checker.manifest(document, text)
    _raise(checker.problems)
    if manifest is None:  # pragma: no cover - every None comes with a problem
        raise _error([_Problem("manifest", 1, 1, "invalid manifest")])
    return manifest


MAX_FLOW_DEPTH = 64


def _check_text(text: str) -> None:
    """Refuse cheaply what the YAML parser would take seconds (or crash) to refuse."""
    depth = 0
    line, column = 1, 0
    for ch in text:
        column += 1
        if ch == "\n":
            line, column = line + 1, 0
        elif 0xD800 <= ord(ch) <= 0xDFFF:
            raise _error([_Problem("manifest", line, column, "is not valid UTF-8 text")])
        elif ch in "[{":
            depth += 1
            if depth > MAX_FLOW_DEPTH:
                raise _error(
                    [
                        _Problem(
                            "manifest",
                            line,
                            column,
                            f"nests more than {MAX_FLOW_DEPTH} levels deep; "
                            "amp.yaml never needs that",
                        )
                    ]
                )
        elif ch in "]}" and depth:
            depth -= 1


def _load(text: str) -> Any:
    yaml = YAML(typ="rt", pure=True)
    try:
        return yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        what = ": ".join(str(part) for part in (exc.context, exc.problem) if part)
        problem = _Problem("manifest", line, column, f"YAML syntax error: {what}")
    except YAMLError as exc:  # ReaderError: a character YAML does not allow
        position = int(getattr(exc, "position", 0) or 0)
        line = text.count("\n", 0, position) + 1
        column = position - (text.rfind("\n", 0, position) + 1) + 1
        reason = getattr(exc, "reason", None) or str(exc)
        problem = _Problem("manifest", line, column, f"YAML syntax error: {reason}")
    except RecursionError:
        problem = _Problem("manifest", 1, 1, "YAML nested too deeply")
    raise _error([problem])


def _pos(node: Any) -> tuple[int, int]:
    lc = getattr(node, "lc", None)
    if lc is None or lc.line is None:
        return 1, 1
    return int(lc.line) + 1, int(lc.col) + 1


def _key_pos(node: CommentedMap, key: str) -> tuple[int, int]:
    try:
        line, col = node.lc.key(key)
    except (KeyError, TypeError, AttributeError):  # a key merged in with `<<: *anchor`
        return _pos(node)
    return int(line) + 1, int(col) + 1


def _value_pos(node: CommentedMap, key: str) -> tuple[int, int]:
    value = node.get(key)
    if isinstance(value, CommentedMap | CommentedSeq):
        return _pos(value)
    try:
        line, col = node.lc.value(key)
    except (KeyError, TypeError, AttributeError):
        return _key_pos(node, key)
    return int(line) + 1, int(col) + 1


def _item_pos(node: CommentedSeq, index: int) -> tuple[int, int]:
    try:
        line, col = node.lc.item(index)
    except (KeyError, TypeError, AttributeError, IndexError):
        return _pos(node)
    return int(line) + 1, int(col) + 1


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return f"a {type(value).__name__}"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class _Checker:
    """Walks the round-trip YAML tree, collecting every problem with its position."""

    def __init__(self) -> None:
        self.problems: list[_Problem] = []
        self._budget = MAX_VALUES

    def add(self, path: str, pos: tuple[int, int], text: str) -> None:
        self.problems.append(_Problem(path or "manifest", pos[0], pos[1], text))

    # -- generic checks --

    def mapping(self, node: CommentedMap, path: str, allowed: tuple[str, ...], where: str) -> None:
        """Report keys that are not strings or not in `allowed`."""
        for key in node:
            if not isinstance(key, str):
                self.add(path, _pos(node), f"keys in {where} must be strings; got {_describe(key)}")
            elif key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.75)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.add(
                    _join(path, key),
                    _key_pos(node, key),
                    f"unknown key {key!r} in {where}{hint}; allowed: {', '.join(allowed)}",
                )

    def is_mapping(self, value: Any, path: str, pos: tuple[int, int], what: str) -> bool:
        if isinstance(value, CommentedMap):
            return True
        self.add(path, pos, f"{what} must be a mapping; got {_describe(value)}")
        return False

    def is_list(self, value: Any, path: str, pos: tuple[int, int], what: str) -> bool:
        if isinstance(value, CommentedSeq):
            return True
        self.add(path, pos, f"{what} must be a list; got {_describe(value)}")
        return False

    def string(
        self, node: CommentedMap, key: str, path: str, *, required: bool, where: str
    ) -> str | None:
        if key not in node:
            if required:
                self.add(_join(path, key), _pos(node), f"{where} is missing required key {key!r}")
            return None
        value = node[key]
        if not isinstance(value, str) or not value.strip():
            self.add(
                _join(path, key),
                _value_pos(node, key),
                f"{key} must be a non-empty string; got {_describe(value)}",
            )
            return None
        return str(value)

    def choice(self, node: CommentedMap, key: str, path: str, choices: tuple[str, ...]) -> None:
        if key in node and node[key] not in choices:
            self.add(
                _join(path, key),
                _value_pos(node, key),
                f"{key} must be one of {', '.join(choices)}; got {_describe(node[key])}",
            )

    def boolean(self, node: CommentedMap, key: str, path: str) -> bool:
        if key not in node:
            return False
        if not isinstance(node[key], bool):
            self.add(
                _join(path, key),
                _value_pos(node, key),
                f"{key} must be true or false; got {_describe(node[key])}",
            )
            return False
        return bool(node[key])

    def integer(self, node: CommentedMap, key: str, path: str, *, minimum: int) -> None:
        if key not in node:
            return
        value = node[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.add(
                _join(path, key),
                _value_pos(node, key),
                f"{key} must be a whole number of at least {minimum}; got {_describe(value)}",
            )

    # -- the document --

    def manifest(self, document: Any, text: str) -> Manifest | None:
        if document is None:
            self.add(
                "manifest", (1, 1), "the document is empty; expected specVersion and integrations"
            )
            return None
        if not isinstance(document, CommentedMap):
            self.add(
                "manifest",
                _pos(document),
                "the document must be a mapping with specVersion and integrations;"
                f" got {_describe(document)}",
            )
            return None
        plain = self.plain(document, "", _pos(document))
        if self._budget < 0:
            return None
        self.mapping(document, "", ROOT_KEYS, "the top level")

        if "specVersion" not in document:
            self.add(
                "specVersion",
                _pos(document),
                f"missing required key 'specVersion' (use {SPEC_VERSION})",
            )
        elif document["specVersion"] != SPEC_VERSION:
            self.add(
                "specVersion",
                _value_pos(document, "specVersion"),
                f"specVersion must be {SPEC_VERSION}; got {_describe(document['specVersion'])}",
            )

        integrations: list[Integration] = []
        if "integrations" not in document:
            self.add("integrations", _pos(document), "missing required key 'integrations'")
        else:
            seq = document["integrations"]
            pos = _value_pos(document, "integrations")
            if self.is_list(seq, "integrations", pos, "integrations"):
                if not seq:
                    self.add("integrations", pos, "integrations must list at least one integration")
                seen: dict[str, int] = {}
                for i, item in enumerate(seq):
                    path = f"integrations[{i}]"
                    name = item.get("name") if isinstance(item, CommentedMap) else None
                    if isinstance(name, str):
                        if name in seen:
                            self.add(
                                _join(path, "name"),
                                _value_pos(item, "name"),
                                f"duplicate integration name {name!r}; it is already used on"
                                f" line {seen[name]}",
                            )
                        else:
                            seen[name] = _value_pos(item, "name")[0]
                    raw = plain["integrations"][i]
                    integ = self.integration(item, path, _item_pos(seq, i), raw)
                    if integ is not None:
                        integrations.append(integ)

        if self.problems:
            return None
        return Manifest(
            text=text,
            spec_version=SPEC_VERSION,
            integrations=tuple(integrations),
            _document=plain,
            _routes=_routes(integrations),
        )

    def integration(
        self, node: Any, path: str, pos: tuple[int, int], raw: Any
    ) -> Integration | None:
        if not self.is_mapping(node, path, pos, "each integration"):
            return None
        before = len(self.problems)
        self.mapping(node, path, INTEGRATION_KEYS, path)
        name = self.string(node, "name", path, required=True, where=path)
        provider = self.string(node, "provider", path, required=True, where=path)
        display_name = self.string(node, "displayName", path, required=False, where=path)
        module = self.string(node, "module", path, required=False, where=path)
        for key in ("write", "proxy"):
            if key in node:
                self.is_mapping(node[key], _join(path, key), _value_pos(node, key), key)

        sections: dict[Action, tuple[ManifestObject, ...]] = {"read": (), "subscribe": ()}
        for action in ACTIONS:
            if action in node:
                sections[action] = self.section(node, action, path, raw[action])
        if "read" not in node and "subscribe" not in node:
            self.add(
                path,
                _key_pos(node, "name") if "name" in node else pos,
                f"{path} needs a read or a subscribe section (s3dest delivers read and"
                " subscribe results)",
            )

        # A subscribe object that inherits fields takes the read object's selection too.
        read_by_name = {o.object_name.lower(): o for o in sections["read"]}
        subscribe: list[ManifestObject] = []
        for obj in sections["subscribe"]:
            if obj.inherit_fields_and_mapping:
                source = read_by_name.get(obj.object_name.lower())
                if source is None:
                    self.add(
                        _join(obj.path, "inheritFieldsAndMapping"),
                        (obj.line, 1),
                        f"inheritFieldsAndMapping needs a read object named"
                        f" {obj.object_name!r} in {path}",
                    )
                else:
                    own = _selection(
                        obj.required_fields + obj.optional_fields, obj.optional_fields_auto
                    )
                    # Either side open (empty = keep every field) keeps every field.
                    merged = (
                        source.selected_fields | own
                        if own is not None and source.selected_fields
                        else frozenset()
                    )
                    obj = replace(obj, selected_fields=merged)
            subscribe.append(obj)

        if len(self.problems) != before or name is None or provider is None:
            return None
        return Integration(
            name=name,
            display_name=display_name,
            provider=provider,
            module=module,
            read=sections["read"],
            subscribe=tuple(subscribe),
            line=pos[0],
            raw=raw,
        )

    def section(
        self, integration: CommentedMap, action: Action, ipath: str, raw: Any
    ) -> tuple[ManifestObject, ...]:
        path = _join(ipath, action)
        node = integration[action]
        if not self.is_mapping(node, path, _value_pos(integration, action), action):
            return ()
        self.mapping(node, path, SECTION_KEYS, path)
        if "objects" not in node:
            self.add(
                _join(path, "objects"), _pos(node), f"{path} is missing required key 'objects'"
            )
            return ()
        seq = node["objects"]
        opath = _join(path, "objects")
        pos = _value_pos(node, "objects")
        if not self.is_list(seq, opath, pos, "objects"):
            return ()
        if not seq:
            self.add(opath, pos, f"{opath} must list at least one object")
        out: list[ManifestObject] = []
        seen: dict[str, int] = {}
        for i, item in enumerate(seq):
            path_i = f"{opath}[{i}]"
            name = item.get("objectName") if isinstance(item, CommentedMap) else None
            if isinstance(name, str):
                if name.lower() in seen:
                    self.add(
                        _join(path_i, "objectName"),
                        _value_pos(item, "objectName"),
                        f"duplicate {action} object {name!r} in {ipath}; it is already"
                        f" listed on line {seen[name.lower()]}",
                    )
                else:
                    seen[name.lower()] = _value_pos(item, "objectName")[0]
            obj = self.object(item, action, path_i, _item_pos(seq, i), raw["objects"][i])
            if obj is not None:
                out.append(obj)
        return tuple(out)

    def object(
        self, node: Any, action: Action, path: str, pos: tuple[int, int], raw: Any
    ) -> ManifestObject | None:
        if not self.is_mapping(node, path, pos, f"each {action} object"):
            return None
        before = len(self.problems)
        allowed = READ_OBJECT_KEYS if action == "read" else SUBSCRIBE_OBJECT_KEYS
        self.mapping(node, path, allowed, path)
        object_name = self.string(node, "objectName", path, required=True, where=path)
        destination = self.string(node, "destination", path, required=True, where=path)
        required = self.fields(node, "requiredFields", path)
        optional = self.fields(node, "optionalFields", path)
        self.choice(node, "optionalFieldsAuto", path, ("all",))
        auto = node.get("optionalFieldsAuto")
        schedule = self.string(node, "schedule", path, required=False, where=path)
        if schedule is not None and not _looks_like_cron(schedule):
            self.add(
                _join(path, "schedule"),
                _value_pos(node, "schedule"),
                f"schedule must be a cron expression with 5 fields, like '*/10 * * * *';"
                f" got {schedule!r}",
            )
        map_to_name = self.string(node, "mapToName", path, required=False, where=path)
        map_to_display = self.string(node, "mapToDisplayName", path, required=False, where=path)
        self.backfill(node, path)
        self.delivery(node, path)
        if "enabled" in node:
            self.string(node, "enabled", path, required=False, where=path)
        inherit = False
        if action == "subscribe":
            inherit = self.boolean(node, "inheritFieldsAndMapping", path)
            for key, keys in EVENT_KEYS.items():
                self.event(node, key, keys, path)
            if "otherEvents" in node:
                other = node["otherEvents"]
                opath = _join(path, "otherEvents")
                if self.is_list(other, opath, _value_pos(node, "otherEvents"), "otherEvents"):
                    for i, value in enumerate(other):
                        if not isinstance(value, str) or not value:
                            self.add(
                                f"{opath}[{i}]",
                                _item_pos(other, i),
                                "each of otherEvents must be a non-empty string;"
                                f" got {_describe(value)}",
                            )

        if len(self.problems) != before or object_name is None or destination is None:
            return None
        selection = _selection(required + optional, auto if isinstance(auto, str) else None)
        dline, dcol = _value_pos(node, "destination")
        return ManifestObject(
            action=action,
            object_name=object_name,
            destination=destination,
            path=path,
            line=pos[0],
            destination_line=dline,
            destination_column=dcol,
            required_fields=required,
            optional_fields=optional,
            optional_fields_auto=auto if isinstance(auto, str) else None,
            schedule=schedule,
            map_to_name=map_to_name,
            map_to_display_name=map_to_display,
            inherit_fields_and_mapping=inherit,
            selected_fields=selection or frozenset(),
            raw=raw,
        )

    def fields(self, node: CommentedMap, key: str, path: str) -> tuple[FieldRef, ...]:
        if key not in node:
            return ()
        seq = node[key]
        fpath = _join(path, key)
        if not self.is_list(seq, fpath, _value_pos(node, key), key):
            return ()
        out: list[FieldRef] = []
        for i, entry in enumerate(seq):
            epath = f"{fpath}[{i}]"
            if not self.is_mapping(entry, epath, _item_pos(seq, i), f"each of {key}"):
                continue
            before = len(self.problems)
            self.mapping(entry, epath, FIELD_KEYS, epath)
            name = self.string(entry, "fieldName", epath, required=False, where=epath)
            map_to = self.string(entry, "mapToName", epath, required=False, where=epath)
            display = self.string(entry, "mapToDisplayName", epath, required=False, where=epath)
            if "prompt" in entry:
                self.string(entry, "prompt", epath, required=False, where=epath)
            if "mappedValues" in entry:
                self.is_list(
                    entry["mappedValues"],
                    _join(epath, "mappedValues"),
                    _value_pos(entry, "mappedValues"),
                    "mappedValues",
                )
            if "fieldName" not in entry and "mapToName" not in entry:
                self.add(
                    epath,
                    _item_pos(seq, i),
                    f"{epath} needs a fieldName (the provider's field) or a mapToName (a field"
                    " the consumer maps at install time)",
                )
            if len(self.problems) == before:
                out.append(FieldRef(name, map_to, display))
        return tuple(out)

    def backfill(self, node: CommentedMap, path: str) -> None:
        if "backfill" not in node:
            return
        bpath = _join(path, "backfill")
        value = node["backfill"]
        if not self.is_mapping(value, bpath, _value_pos(node, "backfill"), "backfill"):
            return
        self.mapping(value, bpath, BACKFILL_KEYS, bpath)
        self.boolean(value, "fullHistory", bpath)
        if "defaultPeriod" in value:
            ppath = _join(bpath, "defaultPeriod")
            period = value["defaultPeriod"]
            if self.is_mapping(period, ppath, _value_pos(value, "defaultPeriod"), "defaultPeriod"):
                self.mapping(period, ppath, DEFAULT_PERIOD_KEYS, ppath)
                self.integer(period, "days", ppath, minimum=0)
                self.boolean(period, "fullHistory", ppath)
                if "days" not in period and "fullHistory" not in period:
                    self.add(
                        ppath,
                        _pos(period),
                        "defaultPeriod needs days (a number of days) or fullHistory: true",
                    )

    def delivery(self, node: CommentedMap, path: str) -> None:
        if "delivery" not in node:
            return
        dpath = _join(path, "delivery")
        value = node["delivery"]
        if self.is_mapping(value, dpath, _value_pos(node, "delivery"), "delivery"):
            self.mapping(value, dpath, DELIVERY_KEYS, dpath)
            self.choice(value, "mode", dpath, DELIVERY_MODES)
            self.integer(value, "pageSize", dpath, minimum=1)

    def event(self, node: CommentedMap, key: str, keys: tuple[str, ...], path: str) -> None:
        if key not in node:
            return
        epath = _join(path, key)
        value = node[key]
        if not self.is_mapping(value, epath, _value_pos(node, key), key):
            return
        self.mapping(value, epath, keys, epath)
        self.choice(value, "enabled", epath, EVENT_ENABLED)
        self.choice(value, "watchFieldsAuto", epath, ("all",))
        self.boolean(value, "includeFullRecords", epath)
        if "requiredWatchFields" in value:
            self.is_list(
                value["requiredWatchFields"],
                _join(epath, "requiredWatchFields"),
                _value_pos(value, "requiredWatchFields"),
                "requiredWatchFields",
            )

    # -- plain data for GET --

    def plain(self, value: Any, path: str, pos: tuple[int, int]) -> Any:
        """`value` as plain JSON-able data; problems for what JSON cannot hold."""
        self._budget -= 1
        if self._budget == -1:
            self.add(
                path,
                pos,
                f"the manifest holds more than {MAX_VALUES} values once YAML aliases are expanded",
            )
        if self._budget < 0:
            return None
        if isinstance(value, CommentedMap):
            return {
                str(k): self.plain(v, _join(path, str(k)), _value_pos(value, k))
                for k, v in value.items()
            }
        if isinstance(value, CommentedSeq):
            return [self.plain(v, f"{path}[{i}]", _item_pos(value, i)) for i, v in enumerate(value)]
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str):
            return str(value)
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return float(value)
        if isinstance(value, dt.datetime | dt.date):
            return value.isoformat()
        self.add(
            path,
            pos,
            f"unsupported YAML value ({type(value).__name__}); use strings, numbers,"
            " booleans, lists and mappings",
        )
        return None


def _looks_like_cron(schedule: str) -> bool:
    return schedule.startswith("@") or len(schedule.split()) in (5, 6)


def _top_level_field(name: str) -> str:
    match = _JSONPATH_TOP.match(name)
    if match:
        return (match.group(1) or match.group(2)).lower()
    return name.lower()


def _selection(refs: tuple[FieldRef, ...], auto: str | None) -> frozenset[str] | None:
    """Lower-cased selected field names; None when the selection is open (keep all)."""
    if auto == "all":
        return None
    names: set[str] = set()
    for ref in refs:
        if ref.field_name is None:
            return None
        names.add(_top_level_field(ref.field_name))
    return frozenset(names)


def _routes(integrations: list[Integration]) -> dict[tuple[str, str, str], RouteTarget]:
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


# -- destinations ------------------------------------------------------------------------


def validate_destinations(manifest: Manifest, exists: Callable[[str], bool]) -> None:
    """Raise ManifestInvalid naming, with its line, every destination that does not exist.

    `exists` is asked once per distinct name.
    """
    known: dict[str, bool] = {}
    problems: list[_Problem] = []
    for obj in manifest.objects():
        if obj.destination not in known:
            known[obj.destination] = bool(exists(obj.destination))
        if not known[obj.destination]:
            problems.append(
                _Problem(
                    _join(obj.path, "destination"),
                    obj.destination_line,
                    obj.destination_column,
                    f"destination {obj.destination!r} does not exist in this project;"
                    " create it first or fix the name",
                )
            )
    _raise(problems)
