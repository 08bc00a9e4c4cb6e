"""Rules for what s3dest sends with every object (SPEC §8): server-side encryption, a
canned ACL and tags."""

from __future__ import annotations

import re
from typing import Any

from s3dest.destinations.rules._text import Bad, optional_text, type_name

SSE_VALUES = ("AES256", "aws:kms")
_SSE_ALIASES = {
    "aes256": "AES256",
    "sse-s3": "AES256",
    "aws:kms": "aws:kms",
    "sse-kms": "aws:kms",
    "kms": "aws:kms",
}
_SSE_HINT = (
    "serverSideEncryption must be 'AES256' (SSE-S3, keys managed by S3) or 'aws:kms' "
    "(SSE-KMS, with kmsKeyId for a customer-managed key)"
)
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_KEY_ID = rf"(?:{_UUID}|mrk-[0-9a-fA-F]{{32}})"
_ALIAS = r"alias/[A-Za-z0-9/_-]{1,250}"
_KMS_KEY_RE = re.compile(
    rf"{_KEY_ID}|{_ALIAS}|arn:aws(?:-us-gov|-cn)?:kms:[a-z0-9-]+:\d{{12}}:(?:key/{_KEY_ID}|{_ALIAS})",
    re.ASCII,
)

#: Canned ACLs s3dest may send. The public ones are refused: s3dest writes customers' data.
CANNED_ACLS = ("private", "bucket-owner-full-control", "bucket-owner-read", "aws-exec-read")
_PUBLIC_ACLS = ("public-read", "public-read-write", "authenticated-read")

# S3's object tag rules: at most 10, keys 1–128 and values 0–256 characters, letters,
# digits, spaces and + - = . _ : / @; keys starting with "aws:" are AWS's.
_MAX_TAGS = 10
_TAG_CHARS = re.compile(r"[\w .:/=+\-@]*")


def check_sse(value: Any) -> str | None:
    text = optional_text("serverSideEncryption", value)
    if text is None:
        return None
    canonical = _SSE_ALIASES.get(text.lower())
    if canonical is None:
        raise Bad(f"{_SSE_HINT}; {text!r} is neither.")
    return canonical


def check_kms_key_id(value: Any, sse: str | None, aws: bool = True) -> str | None:
    """An AWS KMS key id, ARN or alias; on a custom endpoint, any key name (Ceph RGW's key
    servers, Vault or KMIP, name keys freely)."""
    text = optional_text("kmsKeyId", value)
    if text is None:
        return None
    if sse != "aws:kms":
        raise Bad(
            "kmsKeyId applies to SSE-KMS only: set serverSideEncryption to 'aws:kms', or "
            "remove kmsKeyId."
        )
    if aws and not _KMS_KEY_RE.fullmatch(text):
        raise Bad(
            "kmsKeyId must be a KMS key id (a UUID or mrk-…), a key ARN "
            "(arn:aws:kms:<region>:<account>:key/<id>), or an alias (alias/<name> or its "
            "ARN); copy the key ARN from the KMS console."
        )
    return text


def check_bucket_key(value: Any, sse: str | None) -> bool | None:
    if value is None:
        return None
    if not isinstance(value, bool):
        raise Bad(f"bucketKeyEnabled must be true or false, not {type_name(value)}.")
    if sse != "aws:kms":
        raise Bad(
            "bucketKeyEnabled applies to SSE-KMS only: set serverSideEncryption to "
            "'aws:kms', or remove bucketKeyEnabled."
        )
    return value


def check_acl(value: Any) -> str | None:
    text = optional_text("acl", value)
    if text is None:
        return None
    canonical = text.lower()
    if canonical in _PUBLIC_ACLS:
        raise Bad(
            f"acl {text!r} would make every object readable outside the bucket owner's "
            f"account; s3dest does not write public objects. Use one of: {', '.join(CANNED_ACLS)}."
        )
    if canonical not in CANNED_ACLS:
        raise Bad(
            f"acl must be a canned ACL: {', '.join(CANNED_ACLS)} (for a bucket owned by "
            f"another account, 'bucket-owner-full-control'); {text!r} is not one."
        )
    return canonical


def check_tags(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Bad(f"tags must be an object of tag keys to values, not {type_name(value)}.")
    if not value:
        return None
    if len(value) > _MAX_TAGS:
        raise Bad(f"tags may hold at most {_MAX_TAGS} tags (S3's limit per object); give fewer.")
    for key, tag_value in value.items():
        if not isinstance(tag_value, str):
            raise Bad(f"tags: the value of {key!r} must be a string, not {type_name(tag_value)}.")
        if not 1 <= len(key) <= 128:
            raise Bad("tags: every key must be 1–128 characters long.")
        if len(tag_value) > 256:
            raise Bad(f"tags: the value of {key!r} must be at most 256 characters.")
        if key.lower().startswith("aws:"):
            raise Bad(f"tags: the key {key!r} starts with 'aws:', which AWS reserves.")
        for text, what in ((key, "key"), (tag_value, "value")):
            if not _TAG_CHARS.fullmatch(text):
                raise Bad(
                    f"tags: the {what} {text[:40]!r} has characters S3 does not allow in "
                    "tags; use letters, digits, spaces and + - = . _ : / @."
                )
    return dict(value)
