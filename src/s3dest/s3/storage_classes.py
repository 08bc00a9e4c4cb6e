"""S3 storage classes: the accepted set and their canonical spelling."""

from __future__ import annotations

from s3dest.errors import InvalidInput

STORAGE_CLASSES: tuple[str, ...] = (
    "STANDARD",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "GLACIER_IR",
    "DEEP_ARCHIVE",
    "REDUCED_REDUNDANCY",
    "EXPRESS_ONEZONE",
)
DEFAULT_STORAGE_CLASS = "STANDARD"


def canonical_storage_class(value: str | None, *, field: str = "storageClass") -> str:
    """Return the canonical (upper-case) storage class; None or "" means STANDARD.

    Input is case-insensitive and tolerates dashes for underscores ("standard-ia").
    """
    if value is None or not value.strip():
        return DEFAULT_STORAGE_CLASS
    candidate = value.strip().upper().replace("-", "_")
    if candidate in STORAGE_CLASSES:
        return candidate
    raise InvalidInput(
        f"unknown storage class {value!r}",
        {field: f"unknown storage class {value!r}; use one of {', '.join(STORAGE_CLASSES)}"},
    )
