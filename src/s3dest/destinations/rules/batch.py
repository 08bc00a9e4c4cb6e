"""Rules for a destination's batching (SPEC §9): many messages in one object, opt-in.

Each key is checked on its own and reported under its own path (``batch.maxMessages``), so
a form or a client can put the message next to the value that is wrong.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from s3dest.batching import (
    COMPRESSIONS,
    FORMATS,
    MAX_BYTES_RANGE,
    MAX_MESSAGES_RANGE,
    MAX_SECONDS_RANGE,
    BatchSettings,
)
from s3dest.destinations.batch_fields import (
    BATCH_KEYS,
    BATCH_SHAPE,
    batch_hint,
    not_a_batch_key,
    number,
)
from s3dest.destinations.rules._text import Bad, type_name

#: API key -> BatchSettings field.
_SETTING = {
    "maxMessages": "max_messages",
    "maxBytes": "max_bytes",
    "maxSeconds": "max_seconds",
    "format": "format",
    "compression": "compression",
}


def _out_of_range(key: str, value: float) -> Bad:
    shown = number(value) if math.isfinite(value) else "a value that is not a finite number"
    return Bad(
        f"{batch_hint(key)}; {shown} is outside that range. Give a value within it, or leave "
        f"{key} out for the default."
    )


def _whole(key: str, bounds: tuple[int, int]) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        # bool is an int to Python, never a count to a user.
        if isinstance(value, bool) or not isinstance(value, int):
            raise Bad(f"{batch_hint(key)}, not {type_name(value)}.")
        if not bounds[0] <= value <= bounds[1]:
            raise _out_of_range(key, value)
        return value

    return check


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Bad(f"{batch_hint('maxSeconds')}, not {type_name(value)}.")
    # NaN compares false with both bounds: check it is a number first.
    if not math.isfinite(value) or not MAX_SECONDS_RANGE[0] <= value <= MAX_SECONDS_RANGE[1]:
        raise _out_of_range("maxSeconds", float(value))
    return float(value)


def _choice(key: str, choices: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise Bad(batch_hint(key) + ".")
        return str(value)

    return check


_CHECKS: dict[str, Callable[[Any], Any]] = {
    "maxMessages": _whole("maxMessages", MAX_MESSAGES_RANGE),
    "maxBytes": _whole("maxBytes", MAX_BYTES_RANGE),
    "maxSeconds": _seconds,
    "format": _choice("format", FORMATS),
    "compression": _choice("compression", COMPRESSIONS),
}
assert set(_CHECKS) == set(BATCH_KEYS) == set(_SETTING)


def check_batch(value: Any, errors: dict[str, str]) -> BatchSettings | None:
    """The settings (a key missing or null: its default), or None for no batching. Each
    problem goes into `errors` under ``batch`` or ``batch.<key>``; with any, None."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        errors["batch"] = BATCH_SHAPE
        return None
    given: dict[str, Any] = {}
    failed = False
    for key, raw in value.items():
        if key not in _CHECKS:
            errors[f"batch.{key}"] = not_a_batch_key(str(key))
            failed = True
        elif raw is not None:
            try:
                given[_SETTING[key]] = _CHECKS[key](raw)
            except Bad as bad:
                errors[f"batch.{key}"] = str(bad)
                failed = True
    return None if failed else BatchSettings(**given)
