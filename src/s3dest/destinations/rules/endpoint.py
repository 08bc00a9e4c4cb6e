"""Rules for endpointUrl: the URL of an S3-compatible store (none means AWS)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from s3dest.destinations.rules._text import Bad, optional_text


def check_endpoint_url(value: Any, warnings: list[str]) -> str | None:
    text = optional_text("endpointUrl", value)
    if text is None:
        return None
    example = "e.g. 'https://minio.example.com:9000'"
    if any(c.isspace() for c in text):
        raise Bad(f"endpointUrl must not contain spaces; give a URL {example}.")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not text.lower().startswith(scheme + "://"):
        raise Bad(f"endpointUrl must start with http:// or https://, {example}.")
    if "@" in parts.netloc:
        raise Bad(
            "endpointUrl must not contain credentials; remove the 'user:password@' part "
            "and give them as accessKeyId and secretAccessKey."
        )
    host = parts.hostname
    if not host or not re.fullmatch(r"[A-Za-z0-9._\-]+|[0-9A-Fa-f:.]+", host):
        raise Bad(f"endpointUrl must name a host, {example}.")
    try:
        port = parts.port
    except ValueError:
        raise Bad(f"endpointUrl has an invalid port; ports are 1–65535, {example}.") from None
    if port == 0:
        raise Bad(f"endpointUrl has an invalid port; ports are 1–65535, {example}.")
    if parts.query or parts.fragment or text.endswith(("?", "#")):
        raise Bad(f"endpointUrl must not have a query string or fragment, {example}.")
    if parts.path not in ("", "/"):
        first = parts.path.strip("/").split("/", 1)[0]
        raise Bad(
            "endpointUrl must not have a path: s3dest puts the bucket in the path itself "
            f"(path-style). If {first!r} is the bucket, set bucket to it and endpointUrl "
            f"to '{scheme}://{parts.netloc.lower()}'."
        )
    canonical = f"{scheme}://{parts.netloc.lower()}"
    if scheme == "http" and not _is_local_host(host):
        warnings.append(
            "endpointUrl uses http://, so credentials' signatures and every message cross "
            "the network unencrypted; use https:// unless the network is private."
        )
    return canonical


def _is_local_host(host: str) -> bool:
    host = host.lower()
    return host in ("localhost", "::1") or host.startswith("127.") or host.endswith(".localhost")
