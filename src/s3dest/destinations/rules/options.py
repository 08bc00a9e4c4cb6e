"""Rules for how a destination writes: storage class, write mode, enabled."""

from __future__ import annotations

from typing import Any

from s3dest.destinations.rules._text import Bad, sentence, type_name
from s3dest.destinations.schemas import (
    DEFAULT_WRITE_MODE,
    WRITE_MODE_HINT,
    WRITE_MODES,
    WriteMode,
)
from s3dest.errors import InvalidInput
from s3dest.s3.storage_classes import canonical_storage_class


def check_storage_class(value: Any, warnings: list[str]) -> str:
    if value is not None and not isinstance(value, str):
        raise Bad(f"storageClass must be a string such as 'STANDARD', not {type_name(value)}.")
    try:
        canonical = canonical_storage_class(value, field="storageClass")
    except InvalidInput as exc:
        raise Bad(sentence(exc.fields.get("storageClass", exc.message))) from None
    if canonical == "REDUCED_REDUNDANCY":
        warnings.append(
            "storageClass REDUCED_REDUNDANCY is not recommended by AWS: STANDARD is more "
            "durable and usually costs less."
        )
    return canonical


def check_write_mode(value: Any) -> WriteMode:
    if value is None:
        return DEFAULT_WRITE_MODE
    if isinstance(value, str):
        candidate = value.strip().lower().replace("_", "-")
        if not candidate:
            return DEFAULT_WRITE_MODE
        for mode in WRITE_MODES:
            if candidate == mode:
                return mode
    raise Bad(WRITE_MODE_HINT)


def check_enabled(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):
        return value
    raise Bad(f"enabled must be true or false, not {type_name(value)}.")
