"""The nine ``x-amz-meta-*`` fields of an object, checked against S3's rules."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from s3dest.errors import MessageDeliveryError

if TYPE_CHECKING:  # for annotations only: the writer does not need the message models
    from s3dest.messages import EventMetadata

# S3 counts the UTF-8 bytes of every user-defined key (without "x-amz-meta-") and value.
METADATA_BUDGET_BYTES = 2048
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # one C scan, not a Python loop per char


def object_metadata(meta: EventMetadata) -> dict[str, str]:
    """The x-amz-meta-* headers (lower-case keys, without the prefix), checked."""
    headers = object_metadata_unchecked(meta)
    check_metadata(headers)
    return headers


def object_metadata_unchecked(meta: EventMetadata) -> dict[str, str]:
    return {
        "projectid": meta.projectId,
        "installationid": meta.installationId,
        "connectionid": meta.connectionId,
        "destinationid": meta.destinationId,
        "operationid": meta.operationId,
        "objectname": meta.objectName,
        "event-id": meta.event_id,
        "timestamp": meta.timestamp,
        "topic": meta.topic,
    }


def metadata_problems(headers: dict[str, str]) -> dict[str, str]:
    """Field → what is wrong; empty when S3 will take these headers as they are."""
    joined = "".join(headers.values())
    if (
        joined.isascii()
        and _CONTROL.search(joined) is None
        and len(joined) + sum(map(len, headers)) <= METADATA_BUDGET_BYTES
        and "".join(headers).isascii()
    ):
        return {}  # the usual case, in one pass: ASCII, no control characters, in budget
    problems: dict[str, str] = {}
    for name, value in headers.items():
        if not value.isascii():
            problems[name] = (
                f"x-amz-meta-{name} must be US-ASCII; {value!r} has other characters. "
                "Send an ASCII value for this field"
            )
        elif _CONTROL.search(value):
            problems[name] = f"x-amz-meta-{name} contains control characters; remove them"
    size = sum(len(k.encode()) + len(v.encode()) for k, v in headers.items())
    if size > METADATA_BUDGET_BYTES:
        problems["metadata"] = (
            f"the object metadata is {size} bytes; S3 allows {METADATA_BUDGET_BYTES} bytes of "
            "user-defined metadata. Shorten the longest of projectId, installationId, "
            "connectionId, operationId, objectName and topic"
        )
    return problems


def check_metadata(headers: dict[str, str]) -> None:
    problems = metadata_problems(headers)
    if problems:
        _field, text = next(iter(problems.items()))
        raise MessageDeliveryError(f"metadata rejected: {text}", s3_code=None, diagnosis=text)
