"""One read or subscribe object of an amp.yaml: its keys, field lists, schedule,
backfill, delivery and (subscribe only) event settings, checked into a `ManifestObject`."""

from __future__ import annotations

from typing import Any

from ruamel.yaml.comments import CommentedMap

from s3dest.manifest.checks import Checks, describe, join
from s3dest.manifest.model import Action, FieldRef, ManifestObject
from s3dest.manifest.routing import selection
from s3dest.manifest.schema import (
    BACKFILL_KEYS,
    DEFAULT_PERIOD_KEYS,
    DELIVERY_KEYS,
    DELIVERY_MODES,
    EVENT_ENABLED,
    EVENT_KEYS,
    FIELD_KEYS,
    READ_OBJECT_KEYS,
    SUBSCRIBE_OBJECT_KEYS,
)
from s3dest.manifest.source import item_pos, pos, value_pos


def check_object(
    c: Checks, node: Any, action: Action, path: str, at: tuple[int, int], raw: Any
) -> ManifestObject | None:
    if not c.is_mapping(node, path, at, f"each {action} object"):
        return None
    before = len(c.problems)
    allowed = READ_OBJECT_KEYS if action == "read" else SUBSCRIBE_OBJECT_KEYS
    c.mapping(node, path, allowed, path)
    object_name = c.string(node, "objectName", path, required=True, where=path)
    destination = c.string(node, "destination", path, required=True, where=path)
    required = field_refs(c, node, "requiredFields", path)
    optional = field_refs(c, node, "optionalFields", path)
    c.choice(node, "optionalFieldsAuto", path, ("all",))
    auto = node.get("optionalFieldsAuto")
    schedule = c.string(node, "schedule", path, required=False, where=path)
    if schedule is not None and not looks_like_cron(schedule):
        c.add(
            join(path, "schedule"),
            value_pos(node, "schedule"),
            f"schedule must be a cron expression with 5 fields, like '*/10 * * * *';"
            f" got {schedule!r}",
        )
    map_to_name = c.string(node, "mapToName", path, required=False, where=path)
    map_to_display = c.string(node, "mapToDisplayName", path, required=False, where=path)
    check_backfill(c, node, path)
    check_delivery(c, node, path)
    if "enabled" in node:
        c.string(node, "enabled", path, required=False, where=path)
    inherit = False
    if action == "subscribe":
        inherit = c.boolean(node, "inheritFieldsAndMapping", path)
        for key, keys in EVENT_KEYS.items():
            check_event(c, node, key, keys, path)
        if "otherEvents" in node:
            other = node["otherEvents"]
            opath = join(path, "otherEvents")
            if c.is_list(other, opath, value_pos(node, "otherEvents"), "otherEvents"):
                for i, value in enumerate(other):
                    if not isinstance(value, str) or not value:
                        c.add(
                            f"{opath}[{i}]",
                            item_pos(other, i),
                            "each of otherEvents must be a non-empty string;"
                            f" got {describe(value)}",
                        )

    if len(c.problems) != before or object_name is None or destination is None:
        return None
    selected = selection(required + optional, auto if isinstance(auto, str) else None)
    dline, dcol = value_pos(node, "destination")
    return ManifestObject(
        action=action,
        object_name=object_name,
        destination=destination,
        path=path,
        line=at[0],
        destination_line=dline,
        destination_column=dcol,
        required_fields=required,
        optional_fields=optional,
        optional_fields_auto=auto if isinstance(auto, str) else None,
        schedule=schedule,
        map_to_name=map_to_name,
        map_to_display_name=map_to_display,
        inherit_fields_and_mapping=inherit,
        selected_fields=selected or frozenset(),
        raw=raw,
    )


def field_refs(c: Checks, node: CommentedMap, key: str, path: str) -> tuple[FieldRef, ...]:
    if key not in node:
        return ()
    seq = node[key]
    fpath = join(path, key)
    if not c.is_list(seq, fpath, value_pos(node, key), key):
        return ()
    out: list[FieldRef] = []
    for i, entry in enumerate(seq):
        epath = f"{fpath}[{i}]"
        if not c.is_mapping(entry, epath, item_pos(seq, i), f"each of {key}"):
            continue
        before = len(c.problems)
        c.mapping(entry, epath, FIELD_KEYS, epath)
        name = c.string(entry, "fieldName", epath, required=False, where=epath)
        map_to = c.string(entry, "mapToName", epath, required=False, where=epath)
        display = c.string(entry, "mapToDisplayName", epath, required=False, where=epath)
        if "prompt" in entry:
            c.string(entry, "prompt", epath, required=False, where=epath)
        if "mappedValues" in entry:
            c.is_list(
                entry["mappedValues"],
                join(epath, "mappedValues"),
                value_pos(entry, "mappedValues"),
                "mappedValues",
            )
        if "fieldName" not in entry and "mapToName" not in entry:
            c.add(
                epath,
                item_pos(seq, i),
                f"{epath} needs a fieldName (the provider's field) or a mapToName (a field"
                " the consumer maps at install time)",
            )
        if len(c.problems) == before:
            out.append(FieldRef(name, map_to, display))
    return tuple(out)


def check_backfill(c: Checks, node: CommentedMap, path: str) -> None:
    if "backfill" not in node:
        return
    bpath = join(path, "backfill")
    value = node["backfill"]
    if not c.is_mapping(value, bpath, value_pos(node, "backfill"), "backfill"):
        return
    c.mapping(value, bpath, BACKFILL_KEYS, bpath)
    c.boolean(value, "fullHistory", bpath)
    if "defaultPeriod" in value:
        ppath = join(bpath, "defaultPeriod")
        period = value["defaultPeriod"]
        if c.is_mapping(period, ppath, value_pos(value, "defaultPeriod"), "defaultPeriod"):
            c.mapping(period, ppath, DEFAULT_PERIOD_KEYS, ppath)
            c.integer(period, "days", ppath, minimum=0)
            c.boolean(period, "fullHistory", ppath)
            if "days" not in period and "fullHistory" not in period:
                c.add(
                    ppath,
                    pos(period),
                    "defaultPeriod needs days (a number of days) or fullHistory: true",
                )


def check_delivery(c: Checks, node: CommentedMap, path: str) -> None:
    if "delivery" not in node:
        return
    dpath = join(path, "delivery")
    value = node["delivery"]
    if c.is_mapping(value, dpath, value_pos(node, "delivery"), "delivery"):
        c.mapping(value, dpath, DELIVERY_KEYS, dpath)
        c.choice(value, "mode", dpath, DELIVERY_MODES)
        c.integer(value, "pageSize", dpath, minimum=1)


def check_event(c: Checks, node: CommentedMap, key: str, keys: tuple[str, ...], path: str) -> None:
    if key not in node:
        return
    epath = join(path, key)
    value = node[key]
    if not c.is_mapping(value, epath, value_pos(node, key), key):
        return
    c.mapping(value, epath, keys, epath)
    c.choice(value, "enabled", epath, EVENT_ENABLED)
    c.choice(value, "watchFieldsAuto", epath, ("all",))
    c.boolean(value, "includeFullRecords", epath)
    if "requiredWatchFields" in value:
        c.is_list(
            value["requiredWatchFields"],
            join(epath, "requiredWatchFields"),
            value_pos(value, "requiredWatchFields"),
            "requiredWatchFields",
        )


def looks_like_cron(schedule: str) -> bool:
    return schedule.startswith("@") or len(schedule.split()) in (5, 6)
