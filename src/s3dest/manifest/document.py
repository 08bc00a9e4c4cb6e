"""The whole amp.yaml: the top level, each integration and its read / subscribe sections,
checked into a `Manifest` (objects are checked by `s3dest.manifest.objects`)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ruamel.yaml.comments import CommentedMap

from s3dest.manifest.checks import Checks, describe, join
from s3dest.manifest.model import ACTIONS, Action, Integration, Manifest, ManifestObject
from s3dest.manifest.objects import check_object
from s3dest.manifest.routing import route_table, selection
from s3dest.manifest.schema import INTEGRATION_KEYS, ROOT_KEYS, SECTION_KEYS, SPEC_VERSION
from s3dest.manifest.source import item_pos, key_pos, pos, value_pos


def check_document(c: Checks, document: Any, text: str) -> Manifest | None:
    if document is None:
        c.add("manifest", (1, 1), "the document is empty; expected specVersion and integrations")
        return None
    if not isinstance(document, CommentedMap):
        c.add(
            "manifest",
            pos(document),
            "the document must be a mapping with specVersion and integrations;"
            f" got {describe(document)}",
        )
        return None
    plain = c.plain(document, "", pos(document))
    if c.budget < 0:
        return None
    c.mapping(document, "", ROOT_KEYS, "the top level")

    if "specVersion" not in document:
        c.add(
            "specVersion",
            pos(document),
            f"missing required key 'specVersion' (use {SPEC_VERSION})",
        )
    elif document["specVersion"] != SPEC_VERSION:
        c.add(
            "specVersion",
            value_pos(document, "specVersion"),
            f"specVersion must be {SPEC_VERSION}; got {describe(document['specVersion'])}",
        )

    integrations: list[Integration] = []
    if "integrations" not in document:
        c.add("integrations", pos(document), "missing required key 'integrations'")
    else:
        seq = document["integrations"]
        at = value_pos(document, "integrations")
        if c.is_list(seq, "integrations", at, "integrations"):
            if not seq:
                c.add("integrations", at, "integrations must list at least one integration")
            seen: dict[str, int] = {}
            for i, item in enumerate(seq):
                path = f"integrations[{i}]"
                name = item.get("name") if isinstance(item, CommentedMap) else None
                if isinstance(name, str):
                    if name in seen:
                        c.add(
                            join(path, "name"),
                            value_pos(item, "name"),
                            f"duplicate integration name {name!r}; it is already used on"
                            f" line {seen[name]}",
                        )
                    else:
                        seen[name] = value_pos(item, "name")[0]
                raw = plain["integrations"][i]
                integ = check_integration(c, item, path, item_pos(seq, i), raw)
                if integ is not None:
                    integrations.append(integ)

    if c.problems:
        return None
    return Manifest(
        text=text,
        spec_version=SPEC_VERSION,
        integrations=tuple(integrations),
        _document=plain,
        _routes=route_table(integrations),
    )


def check_integration(
    c: Checks, node: Any, path: str, at: tuple[int, int], raw: Any
) -> Integration | None:
    if not c.is_mapping(node, path, at, "each integration"):
        return None
    before = len(c.problems)
    c.mapping(node, path, INTEGRATION_KEYS, path)
    name = c.string(node, "name", path, required=True, where=path)
    provider = c.string(node, "provider", path, required=True, where=path)
    display_name = c.string(node, "displayName", path, required=False, where=path)
    module = c.string(node, "module", path, required=False, where=path)
    for key in ("write", "proxy"):
        if key in node:
            c.is_mapping(node[key], join(path, key), value_pos(node, key), key)

    sections: dict[Action, tuple[ManifestObject, ...]] = {"read": (), "subscribe": ()}
    for action in ACTIONS:
        if action in node:
            sections[action] = check_section(c, node, action, path, raw[action])
    if "read" not in node and "subscribe" not in node:
        c.add(
            path,
            key_pos(node, "name") if "name" in node else at,
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
                c.add(
                    join(obj.path, "inheritFieldsAndMapping"),
                    (obj.line, 1),
                    f"inheritFieldsAndMapping needs a read object named"
                    f" {obj.object_name!r} in {path}",
                )
            else:
                own = selection(obj.required_fields + obj.optional_fields, obj.optional_fields_auto)
                # Either side open (empty = keep every field) keeps every field.
                merged = (
                    source.selected_fields | own
                    if own is not None and source.selected_fields
                    else frozenset()
                )
                obj = replace(obj, selected_fields=merged)
        subscribe.append(obj)

    if len(c.problems) != before or name is None or provider is None:
        return None
    return Integration(
        name=name,
        display_name=display_name,
        provider=provider,
        module=module,
        read=sections["read"],
        subscribe=tuple(subscribe),
        line=at[0],
        raw=raw,
    )


def check_section(
    c: Checks, integration: CommentedMap, action: Action, ipath: str, raw: Any
) -> tuple[ManifestObject, ...]:
    path = join(ipath, action)
    node = integration[action]
    if not c.is_mapping(node, path, value_pos(integration, action), action):
        return ()
    c.mapping(node, path, SECTION_KEYS, path)
    if "objects" not in node:
        c.add(join(path, "objects"), pos(node), f"{path} is missing required key 'objects'")
        return ()
    seq = node["objects"]
    opath = join(path, "objects")
    at = value_pos(node, "objects")
    if not c.is_list(seq, opath, at, "objects"):
        return ()
    if not seq:
        c.add(opath, at, f"{opath} must list at least one object")
    out: list[ManifestObject] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(seq):
        path_i = f"{opath}[{i}]"
        name = item.get("objectName") if isinstance(item, CommentedMap) else None
        if isinstance(name, str):
            if name.lower() in seen:
                c.add(
                    join(path_i, "objectName"),
                    value_pos(item, "objectName"),
                    f"duplicate {action} object {name!r} in {ipath}; it is already"
                    f" listed on line {seen[name.lower()]}",
                )
            else:
                seen[name.lower()] = value_pos(item, "objectName")[0]
        obj = check_object(c, item, action, path_i, item_pos(seq, i), raw["objects"][i])
        if obj is not None:
            out.append(obj)
    return tuple(out)
