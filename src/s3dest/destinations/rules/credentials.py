"""Rules for a destination's credentials: access key ID, secret access key, session token,
and whether they belong together."""

from __future__ import annotations

import re
from typing import Any

from s3dest.destinations.rules._text import (
    DIGITS,
    LOWER,
    UPPER,
    Bad,
    and_,
    chars,
    describe_bad,
    optional_text,
    required_text,
)

_AWS_KEY_ID_CHARS = UPPER | DIGITS
_CUSTOM_KEY_ID_RE = re.compile(r"[A-Za-z0-9._-]{3,128}")
_CUSTOM_KEY_ID_CHARS = UPPER | LOWER | DIGITS | frozenset("._-")
_KEY_ID_PREFIXES = ("AKIA", "ASIA")
#: Prefixes of IAM unique IDs that are not access key IDs, and what they are.
_NOT_KEY_ID_PREFIXES: dict[str, str] = {
    "AIDA": "an IAM user's unique ID",
    "AROA": "an IAM role's unique ID",
    "AGPA": "an IAM group's unique ID",
    "AIPA": "an EC2 instance profile's unique ID",
    "ANPA": "a managed policy's unique ID",
    "ANVA": "a managed policy version's unique ID",
    "APKA": "a CloudFront public key ID",
    "ASCA": "a certificate ID",
}
_AWS_SECRET_CHARS = UPPER | LOWER | DIGITS | frozenset("/+")
_SECRET_MAX = 1024
_SESSION_TOKEN_MAX = 16384


def check_access_key_id(value: Any, aws: bool) -> str:
    text = required_text("accessKeyId", value)
    if any(c.isspace() for c in text):
        raise Bad(
            "accessKeyId contains whitespace; copy the access key ID again, without "
            "spaces or line breaks."
        )
    if not aws:
        if _CUSTOM_KEY_ID_RE.fullmatch(text):
            return text
        raise Bad(
            "accessKeyId must be 3–128 letters, digits, '.', '_' or '-'; the value given "
            f"has {len(text)} characters{describe_bad(text, _CUSTOM_KEY_ID_CHARS)}. Copy "
            "the access key from your storage service's console."
        )
    prefix = text[:4].upper()
    if prefix in _NOT_KEY_ID_PREFIXES:
        raise Bad(
            f"accessKeyId starts with {prefix!r}, the prefix of {_NOT_KEY_ID_PREFIXES[prefix]}"
            ", not of an access key ID. Create an access key (IAM console → user → "
            "Security credentials) and use its ID, which starts with AKIA."
        )
    problems: list[str] = []
    if not 16 <= len(text) <= 128:
        problems.append(f"has {len(text)} characters")
    if any(c in LOWER for c in text):
        problems.append("has lower-case letters")
    bad = sorted({c for c in text if c not in _AWS_KEY_ID_CHARS and c not in LOWER})
    if bad:
        problems.append(f"has {chars(bad)}")
    if not problems:
        return text
    looks_secret = len(text) == 40 and any(c in LOWER for c in text)
    hint = (
        " It looks like a secret access key: accessKeyId is the shorter ID next to it."
        if looks_secret
        else " Copy it from the IAM console or the access key's .csv file."
    )
    raise Bad(
        "accessKeyId must be an AWS access key ID: 16–128 upper-case letters and digits, "
        f"usually 20 starting with AKIA or ASIA; the value given {and_(problems)}.{hint}"
    )


def check_credential_pair(
    access_key_id: str, session_token: str | None, warnings: list[str]
) -> None:
    """AWS only: a temporary key needs its session token; a long-term key does not."""
    prefix = access_key_id[:4]
    if prefix == "ASIA" and session_token is None:
        raise Bad(
            "sessionToken is required with temporary credentials (an accessKeyId starting "
            "with ASIA); give the session token issued with them, or use a long-term "
            "access key (AKIA…)."
        )
    if prefix == "AKIA" and session_token is not None:
        warnings.append(
            "sessionToken is set, but accessKeyId starts with AKIA (a long-term key), "
            "which does not use one; S3 rejects writes that send a session token with a "
            "long-term key. Clear sessionToken unless the credentials are temporary."
        )
    elif prefix not in _KEY_ID_PREFIXES:
        warnings.append(
            f"accessKeyId starts with {prefix!r}; AWS access key IDs start with AKIA "
            "(long-term) or ASIA (temporary). If the bucket is not on AWS, set endpointUrl."
        )


def check_secret(value: Any, aws: bool, warnings: list[str]) -> str:
    if isinstance(value, str) and not value.strip():
        value = None
    text = required_text("secretAccessKey", value)
    if any(c.isspace() for c in text):
        raise Bad(
            "secretAccessKey contains whitespace; copy the secret access key again, "
            "without spaces or line breaks."
        )
    minimum = 16 if aws else 8
    if len(text) < minimum:
        aws_note = " (AWS secret access keys have 40)" if aws else ""
        raise Bad(
            f"secretAccessKey must be at least {minimum} characters{aws_note}; the value "
            f"given has {len(text)}. Copy the whole secret access key."
        )
    if len(text) > _SECRET_MAX:
        raise Bad(
            f"secretAccessKey must be at most {_SECRET_MAX} characters; the value given "
            f"has {len(text)}. Give only the secret access key."
        )
    if aws and len(text) != 40:
        warnings.append(
            f"secretAccessKey has {len(text)} characters, but AWS secret access keys have "
            "40; check that it was copied whole."
        )
    elif aws and any(c not in _AWS_SECRET_CHARS for c in text):
        warnings.append(
            "secretAccessKey has characters AWS secret access keys do not contain (they "
            "are letters, digits, '/' and '+'); check that it was copied correctly."
        )
    return text


def check_session_token(value: Any) -> str | None:
    text = optional_text("sessionToken", value)
    if text is None:
        return None
    if any(c.isspace() for c in text):
        raise Bad(
            "sessionToken contains whitespace; copy the session token again, without "
            "spaces or line breaks."
        )
    if len(text) > _SESSION_TOKEN_MAX:
        raise Bad(
            f"sessionToken must be at most {_SESSION_TOKEN_MAX} characters; the value "
            f"given has {len(text)}. Give only the session token."
        )
    return text
