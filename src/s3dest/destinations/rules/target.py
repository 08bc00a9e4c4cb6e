"""Rules for where a destination writes: its name (the alias amp.yaml uses), the bucket
and the region."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from s3dest.destinations.rules._text import (
    DIGITS,
    LOWER,
    UPPER,
    Bad,
    and_,
    char,
    chars,
    required_text,
)
from s3dest.s3 import partitions

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")

_BUCKET_CHARS = LOWER | DIGITS | frozenset(".-")
_IP_RE = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES: dict[str, str] = {
    "-s3alias": "an access point alias",
    "--ol-s3": "an Object Lambda access point alias",
    ".mrap": "a Multi-Region Access Point",
    "--table-s3": "an S3 table bucket",
}
_DIRECTORY_SUFFIX = "--x-s3"
_DIRECTORY_RE = re.compile(r"(?P<base>[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)--(?P<zone>[a-z0-9-]+)--x-s3")
_ZONE_ID_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*-az[0-9]+")

_DIRECTIONS = "central|north|south|east|west|northeast|northwest|southeast|southwest"
_AWS_REGION_RE = re.compile(rf"[a-z]{{2,4}}(?:-[a-z]{{2,4}})?-(?:{_DIRECTIONS})-[0-9]{{1,2}}")
_CUSTOM_REGION_RE = re.compile(r"[a-z0-9-]{1,64}")


def check_name(value: Any) -> str:
    text = required_text("name", value)
    if len(text) > 64:
        raise Bad(
            f"name must be at most 64 characters; this one has {len(text)}. Choose a shorter alias."
        )
    if _NAME_RE.fullmatch(text):
        return text
    problems: list[str] = []
    if text[0] not in _NAME_CHARS - frozenset("._-"):
        problems.append(f"starts with {char(text[0])}")
    bad = sorted({c for c in text if c not in _NAME_CHARS})
    if bad:
        problems.append(f"has {chars(bad)}")
    raise Bad(
        "name must start with a letter or digit and contain only letters, digits, "
        f"'.', '_' and '-', so amp.yaml can refer to it; {text!r} {and_(problems)}. "
        "Choose an alias such as 'ampersandS3Bucket'."
    )


def check_bucket(value: Any, storage_class: str | None, aws: bool) -> str:
    text = required_text("bucket", value)
    hint = _bucket_paste_hint(text)
    if hint:
        raise Bad(hint)

    problems: list[str] = []
    if not 3 <= len(text) <= 63:
        problems.append(f"is {len(text)} character{'s' if len(text) != 1 else ''} long")
    has: list[str] = []
    if any(c in UPPER for c in text):
        has.append("upper-case letters")
    bad = sorted({c for c in text if c not in _BUCKET_CHARS and c not in UPPER})
    has.extend(char(c) for c in bad)
    if ".." in text:
        has.append("two dots in a row")
    if has:
        problems.append(f"has {and_(has)}")
    if text[0] in ".-":
        problems.append(f"starts with {char(text[0])} (it must start with a letter or digit)")
    if text[-1] in ".-":
        problems.append(f"ends with {char(text[-1])} (it must end with a letter or digit)")
    if _IP_RE.fullmatch(text):
        problems.append("is formatted like an IP address")
    if problems:
        raise Bad(
            "bucket names must be 3–63 characters of lower-case letters, digits, dots and "
            f"hyphens; {text!r} {and_(problems)}. Use the bucket's exact name as shown "
            "in the S3 console."
        )
    if not aws:
        return text

    for prefix in _RESERVED_PREFIXES:
        if text.startswith(prefix):
            raise Bad(
                f"bucket names cannot start with {prefix!r}, a prefix S3 reserves, so "
                f"{text!r} is not a bucket name. Use the bucket's exact name as shown in "
                "the S3 console."
            )
    for suffix, what in _RESERVED_SUFFIXES.items():
        if text.endswith(suffix):
            raise Bad(
                f"{text!r} ends with {suffix!r}, so it names {what}, not a general-purpose "
                "bucket; s3dest writes to the bucket itself. Use the bucket's exact name "
                "as shown in the S3 console."
            )

    is_directory = text.endswith(_DIRECTORY_SUFFIX)
    if storage_class is None:  # the storage class is wrong; say nothing about the pairing
        return text
    if storage_class == "EXPRESS_ONEZONE":
        example = "'my-bucket--usw2-az1--x-s3'"
        if not is_directory:
            raise Bad(
                "storage class EXPRESS_ONEZONE writes to an S3 Express One Zone directory "
                f"bucket, whose name ends in '--<zone-id>--x-s3' (e.g. {example}); "
                f"{text!r} is a general-purpose bucket name. Use the directory bucket's "
                "full name, or choose another storageClass such as STANDARD."
            )
        match = _DIRECTORY_RE.fullmatch(text)
        if "." in text or match is None or not _ZONE_ID_RE.fullmatch(match["zone"]):
            raise Bad(
                "directory bucket names have the form 'base-name--<zone-id>--x-s3' "
                f"(e.g. {example}), with no dots; {text!r} does not. Use the directory "
                "bucket's full name as shown in the S3 console."
            )
    elif is_directory:
        raise Bad(
            f"{text!r} ends with '--x-s3', so it is an S3 Express One Zone directory "
            f"bucket, which accepts only the EXPRESS_ONEZONE storage class, not "
            f"{storage_class}. Set storageClass to EXPRESS_ONEZONE, or use a "
            "general-purpose bucket."
        )
    return text


def _bucket_paste_hint(text: str) -> str | None:
    """A message for a bucket given as a URI, ARN or host name instead of its name."""
    candidate: str | None = None
    if text.lower().startswith("s3://"):
        candidate = text[5:].split("/", 1)[0]
        what = "an S3 URI"
    elif text.startswith("arn:"):
        candidate = text.rsplit(":", 1)[-1].split("/", 1)[0]
        what = "an ARN"
    elif text.lower().startswith(("http://", "https://")):
        host = urlsplit(text).hostname or ""
        candidate = host.split(".s3", 1)[0] if ".s3" in host else None
        what = "a URL"
    elif "/" in text:
        candidate = text.split("/", 1)[0]
        what = "a path"
    elif text.lower().endswith(".amazonaws.com") and ".s3" in text.lower():
        candidate = text.lower().split(".s3", 1)[0]
        what = "an S3 host name"
    else:
        return None
    fix = f"give only the bucket name, {candidate!r}" if candidate else "give only its name"
    return f"bucket must be the bucket's name, but {text!r} is {what}; {fix}."


def check_region(value: Any, aws: bool) -> str:
    text = required_text("region", value)
    if not aws:
        if _CUSTOM_REGION_RE.fullmatch(text):
            return text
        raise Bad(
            "region must be 1–64 lower-case letters, digits and hyphens; with an "
            f"endpointUrl, use the region your storage service expects (often 'auto' or "
            f"'us-east-1'). {text!r} is not valid."
        )
    canonical = text.lower()
    # Without endpointUrl, s3dest writes to the region's own S3 host: the region must be
    # one of a partition's (botocore's list), or the host does not exist.
    if partitions.partition_of(canonical) is not None:
        return canonical
    if canonical[-1:].isalpha() and partitions.partition_of(canonical[:-1]) is not None:
        raise Bad(
            f"region must be an AWS region, not an availability zone; {text!r} is a zone "
            f"of the region {canonical[:-1]!r}. Use {canonical[:-1]!r}."
        )
    shape = "" if _AWS_REGION_RE.fullmatch(canonical) else " code"
    raise Bad(
        f"region must be an AWS region{shape} such as 'us-west-2', 'us-gov-west-1' or "
        f"'cn-north-1' (partitions {', '.join(partitions.SUPPORTED)}); {text!r} is not one. "
        "Use the region shown for the bucket in the S3 console, or, for an S3-compatible "
        "store, also set endpointUrl (any region it expects is accepted then)."
    )
