"""A destination's `batch` field (SPEC §9) at the edge: its request shape (`BatchBody`), its
public view (`BatchPublic`) and the sentences that explain each of its keys.

The sentences live here, not in the rules, because two places say them: the rules (a value
out of range) and the schemas (a value of the wrong JSON type, refused while parsing), and
a user should read the same explanation whichever caught it. The bounds and defaults are
`s3dest.batching`'s; nothing here restates a number.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt

from s3dest.batching import (
    COMPRESSIONS,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_MESSAGES,
    DEFAULT_MAX_SECONDS,
    FORMATS,
    MAX_BYTES_RANGE,
    MAX_MESSAGES_RANGE,
    MAX_SECONDS_RANGE,
    BatchSettings,
    Compression,
)

__all__ = [
    "BATCH_KEYS",
    "BATCH_SHAPE",
    "LIMITS",
    "BatchBody",
    "BatchPublic",
    "batch_hint",
    "batch_shape_message",
    "not_a_batch_key",
    "number",
]

#: The keys of `batch`, as the API names them, in display order.
BATCH_KEYS: tuple[str, ...] = ("maxMessages", "maxBytes", "maxSeconds", "format", "compression")


def number(value: float) -> str:
    """1,024 / 0.1 / 3,600: as a user would write the number (no trailing .0)."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,}"


def _unit(value: int) -> str | None:
    for unit, scale in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if value >= scale and value % scale == 0:
            return f"{value // scale} {unit}"
    return None


def _size(value: int) -> str:
    """1,024 (1 KiB): the exact number, which is what is sent, and what it means."""
    unit = _unit(value)
    return f"{number(value)} ({unit})" if unit else number(value)


def _range(bounds: tuple[float, float], show: Any = number) -> str:
    return f"from {show(bounds[0])} to {show(bounds[1])}"


#: The values each number takes, as the messages and the dashboard's form say them.
LIMITS = {
    "maxMessages": f"{_range(MAX_MESSAGES_RANGE)} (default {number(DEFAULT_MAX_MESSAGES)})",
    "maxBytes": f"{_range(MAX_BYTES_RANGE, _size)} (default {_unit(DEFAULT_MAX_BYTES)})",
    "maxSeconds": f"{_range(MAX_SECONDS_RANGE)} (default {number(DEFAULT_MAX_SECONDS)})",
}

_HINTS = {
    "maxMessages": (
        "batch.maxMessages is the most messages in one object: a whole number "
        + LIMITS["maxMessages"]
    ),
    "maxBytes": (
        "batch.maxBytes is the most bytes of messages in one object, before compression: a "
        "whole number " + LIMITS["maxBytes"]
    ),
    "maxSeconds": (
        "batch.maxSeconds is how long a message waits for its batch to fill before the batch "
        "is written anyway: a number of seconds " + LIMITS["maxSeconds"]
    ),
    "format": (
        "batch.format must be "
        + " or ".join(repr(f) for f in FORMATS)
        + " (JSON Lines: one message a line)"
    ),
    "compression": (
        "batch.compression must be "
        + ", ".join(repr(c) for c in COMPRESSIONS[:-1])
        + f" or {COMPRESSIONS[-1]!r} (default {BatchSettings().compression!r})"
    ),
}


def batch_hint(key: str) -> str:
    """What `batch.<key>` is and which values it takes, without a full stop (the caller
    may go on: "…; 0 is outside that range")."""
    return _HINTS[key]


def not_a_batch_key(key: str) -> str:
    return (
        f"{key!r} is not a batch setting; remove it. The batch settings are: "
        f"{', '.join(BATCH_KEYS)} (each optional)."
    )


BATCH_SHAPE = (
    'batch must be an object of batch settings, e.g. {"maxMessages": 1000, "maxSeconds": 60, '
    '"compression": "gzip"} (every key optional; {} takes the defaults), or null for one '
    "object per message."
)


def batch_shape_message(name: str, kind: str) -> str:
    """The sentence for a pydantic error at ``batch`` or ``batch.<key>`` (``kind`` is its
    type, e.g. int_type, extra_forbidden)."""
    key = name.removeprefix("batch.")
    if name == "batch" or key not in _HINTS:
        return not_a_batch_key(key) if kind == "extra_forbidden" else BATCH_SHAPE
    if kind == "int_type":
        return f"{batch_hint(key)}; the value given is not a whole number."
    if kind == "float_type":
        return f"{batch_hint(key)}; the value given is not a number."
    return batch_hint(key) + "."


# ------------------------------------------------------------------------ the shapes


def _bounded(bounds: tuple[float, float]) -> dict[str, Any]:
    # Documented in the schema, checked by the rules (s3dest.destinations.rules.batch): the
    # rules' sentence names the range and the fix, which a pydantic bound's would not.
    return {"minimum": bounds[0], "maximum": bounds[1]}


class BatchBody(BaseModel):
    """The `batch` of a create or update body: only shapes (strict JSON types, no unknown
    keys); a key left out or null takes its default."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    # Strict: `true` is not 1 message, and "1000" is not a number.
    maxMessages: StrictInt | None = Field(
        default=None,
        description=f"the most messages in one object (default {DEFAULT_MAX_MESSAGES})",
        json_schema_extra=_bounded(MAX_MESSAGES_RANGE),
    )
    maxBytes: StrictInt | None = Field(
        default=None,
        description="the most bytes of messages in one object, before compression "
        f"(default {DEFAULT_MAX_BYTES}, 8 MiB)",
        json_schema_extra=_bounded(MAX_BYTES_RANGE),
    )
    maxSeconds: StrictFloat | None = Field(
        default=None,
        description="how long a message may wait for its batch to fill, in seconds "
        f"(default {DEFAULT_MAX_SECONDS:g})",
        json_schema_extra=_bounded(MAX_SECONDS_RANGE),
    )
    format: Literal["jsonl"] | None = Field(
        default=None, description="jsonl: JSON Lines, one message a line (the only format)"
    )
    compression: Compression | None = Field(
        default=None, description="gzip (default), zstd or none"
    )


class BatchPublic(BaseModel):
    """A destination's batching as the API shows it: every key, defaults filled in."""

    maxMessages: int = Field(description="the most messages in one object")
    maxBytes: int = Field(description="the most bytes of messages in one object")
    maxSeconds: float = Field(description="how long a message may wait for its batch to fill")
    format: Literal["jsonl"] = Field(description="JSON Lines, one message a line")
    compression: Compression = Field(
        description="how the object is compressed (its Content-Encoding)"
    )

    @classmethod
    def of(cls, settings: BatchSettings | None) -> BatchPublic | None:
        return None if settings is None else cls.model_validate(settings.to_api())
