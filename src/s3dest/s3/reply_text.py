"""What of an endpoint's reply may be shown to a tenant (SPEC §7).

An endpoint is chosen by the tenant and may be anything that speaks HTTP; what it answers
reaches the connection test's result, a message's lastError, the dashboard and logs. So
only these parts are kept, each in a bounded, checked form; anything else is dropped:

* an S3 error code: `[A-Za-z0-9.]{1,64}`;
* a message: at most 300 characters, tags removed, XML entities decoded once, control and
  formatting characters (bidi overrides, zero-width) removed, whitespace collapsed;
* an ETag or a version id only when it looks like one;
* a region (x-amz-bucket-region, <Region>) only when it looks like one.
"""

from __future__ import annotations

import html
import re
import unicodedata

MAX_MESSAGE_CHARS = 300
_CODE = re.compile(r"[A-Za-z0-9.]{1,64}")
_ETAG = re.compile(r'(?:W/)?"?[A-Za-z0-9._~+/=-]{1,128}"?')
_VERSION = re.compile(r"[A-Za-z0-9._~+/=-]{1,256}")
# AWS regions (us-gov-west-1) and S3-compatible ones (auto, default, garage): a token of
# lower-case letters, digits and hyphens, as a destination's region may be.
_REGION = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")
_TAG = re.compile(r"<[^>]{0,2000}>")
_SPACE = re.compile(r"\s+")


def s3_code(value: str | None) -> str | None:
    return value if value is not None and _CODE.fullmatch(value) else None


def region(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value if _REGION.fullmatch(value) else None


def etag(value: str | None) -> str | None:
    return value if value is not None and _ETAG.fullmatch(value) else None


def version_id(value: str | None) -> str | None:
    return value if value is not None and _VERSION.fullmatch(value) else None


def message(value: str | None, limit: int = MAX_MESSAGE_CHARS) -> str:
    """An endpoint's words, safe to show: bounded, plain, printable, on one line."""
    if not value:
        return ""
    text = value[: limit * 20]  # bound the work before anything else
    text = html.unescape(text)
    text = _TAG.sub(" ", text).replace("<", " ").replace(">", " ")
    text = "".join(
        " " if c.isspace() else c
        for c in text
        if c.isspace() or not unicodedata.category(c).startswith("C")
    )
    text = _SPACE.sub(" ", text).strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text
