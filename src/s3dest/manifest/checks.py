"""The checks every part of an amp.yaml is made of: is it a mapping, a list, a string, one
of some choices…, each problem recorded with the position of what it is about.

A `Checks` collects problems instead of raising at the first, so one upload reports all of
them; `s3dest.manifest.document` and `s3dest.manifest.objects` walk the document with it.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Mapping
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from s3dest.manifest.problems import Problem
from s3dest.manifest.schema import MAX_VALUES
from s3dest.manifest.source import item_pos, key_pos, pos, value_pos


def describe(value: Any) -> str:
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


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class Checks:
    """Walks the round-trip YAML tree, collecting every problem with its position."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.budget = MAX_VALUES  # values `plain` may still copy (aliases expand)

    def add(self, path: str, at: tuple[int, int], text: str) -> None:
        self.problems.append(Problem(path or "manifest", at[0], at[1], text))

    def mapping(self, node: CommentedMap, path: str, allowed: tuple[str, ...], where: str) -> None:
        """Report keys that are not strings or not in `allowed`."""
        for key in node:
            if not isinstance(key, str):
                self.add(path, pos(node), f"keys in {where} must be strings; got {describe(key)}")
            elif key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.75)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.add(
                    join(path, key),
                    key_pos(node, key),
                    f"unknown key {key!r} in {where}{hint}; allowed: {', '.join(allowed)}",
                )

    def is_mapping(self, value: Any, path: str, at: tuple[int, int], what: str) -> bool:
        if isinstance(value, CommentedMap):
            return True
        self.add(path, at, f"{what} must be a mapping; got {describe(value)}")
        return False

    def is_list(self, value: Any, path: str, at: tuple[int, int], what: str) -> bool:
        if isinstance(value, CommentedSeq):
            return True
        self.add(path, at, f"{what} must be a list; got {describe(value)}")
        return False

    def string(
        self, node: CommentedMap, key: str, path: str, *, required: bool, where: str
    ) -> str | None:
        if key not in node:
            if required:
                self.add(join(path, key), pos(node), f"{where} is missing required key {key!r}")
            return None
        value = node[key]
        if not isinstance(value, str) or not value.strip():
            self.add(
                join(path, key),
                value_pos(node, key),
                f"{key} must be a non-empty string; got {describe(value)}",
            )
            return None
        return str(value)

    def choice(self, node: CommentedMap, key: str, path: str, choices: tuple[str, ...]) -> None:
        if key in node and node[key] not in choices:
            self.add(
                join(path, key),
                value_pos(node, key),
                f"{key} must be one of {', '.join(choices)}; got {describe(node[key])}",
            )

    def boolean(self, node: CommentedMap, key: str, path: str) -> bool:
        if key not in node:
            return False
        if not isinstance(node[key], bool):
            self.add(
                join(path, key),
                value_pos(node, key),
                f"{key} must be true or false; got {describe(node[key])}",
            )
            return False
        return bool(node[key])

    def integer(self, node: CommentedMap, key: str, path: str, *, minimum: int) -> None:
        if key not in node:
            return
        value = node[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.add(
                join(path, key),
                value_pos(node, key),
                f"{key} must be a whole number of at least {minimum}; got {describe(value)}",
            )

    # -- plain data for GET --

    def plain(self, value: Any, path: str, at: tuple[int, int]) -> Any:
        """`value` as plain JSON-able data; problems for what JSON cannot hold."""
        self.budget -= 1
        if self.budget == -1:
            self.add(
                path,
                at,
                f"the manifest holds more than {MAX_VALUES} values once YAML aliases are expanded",
            )
        if self.budget < 0:
            return None
        if isinstance(value, CommentedMap):
            return {
                str(k): self.plain(v, join(path, str(k)), value_pos(value, k))
                for k, v in value.items()
            }
        if isinstance(value, CommentedSeq):
            return [self.plain(v, f"{path}[{i}]", item_pos(value, i)) for i, v in enumerate(value)]
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
            at,
            f"unsupported YAML value ({type(value).__name__}); use strings, numbers,"
            " booleans, lists and mappings",
        )
        return None
