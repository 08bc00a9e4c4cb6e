"""Small helpers the destination rules share: one field's problem (`Bad`), reading
text values, and describing characters and types in plain words."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from s3dest.destinations.schemas import REQUIRED_HINTS

LOWER = frozenset("abcdefghijklmnopqrstuvwxyz")
UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
DIGITS = frozenset("0123456789")


class Bad(Exception):
    """One field's problem, as the sentence to show."""


def present(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def required_text(name: str, value: Any) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise Bad(REQUIRED_HINTS[name])
    if not isinstance(value, str):
        raise Bad(f"{name} must be a string, not {type_name(value)}.")
    return value.strip()


def optional_text(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise Bad(f"{name} must be a string or null, not {type_name(value)}.")
    text = value.strip()
    return text or None


def type_name(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, str):
        return "a string"
    return f"a {type(value).__name__}"


def char(c: str) -> str:
    if c == " ":
        return "a space"
    if c.isspace() or not c.isprintable():
        return f"the character {c!r}"
    return f"'{c}'"


def chars(found: Sequence[str]) -> str:
    return and_([char(c) for c in found])


def describe_bad(text: str, allowed: frozenset[str]) -> str:
    bad = sorted({c for c in text if c not in allowed})
    return f", including {chars(bad)}" if bad else ""


def and_(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."
