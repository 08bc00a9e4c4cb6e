"""Rules for endpointUrl: the URL of an S3-compatible store (none means AWS).

Besides its syntax, the host must be one s3dest may contact (SPEC §7): `check_endpoint`
(the process's `EgressPolicy.check_endpoint` in the services; a stub in unit tests, which
must not resolve names) refuses loopback, private, link-local and metadata addresses in
every spelling, and names that resolve there. The check is repeated on the resolved
address before every connection (`s3dest.s3.writer`), so this one is for a clear 422.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from s3dest.destinations.rules._text import Bad, optional_text
from s3dest.s3.egress import SETTING, EndpointRefused, EndpointUnresolvable, parse_address

#: (host, port) -> None, or raises EndpointRefused.
EndpointChecker = Callable[[str, int], None]


def check_endpoint_url(
    value: Any, warnings: list[str], check_endpoint: EndpointChecker
) -> str | None:
    text = optional_text("endpointUrl", value)
    if text is None:
        return None
    example = "e.g. 'https://minio.example.com:9000'"
    if any(c.isspace() for c in text):
        raise Bad(f"endpointUrl must not contain spaces; give a URL {example}.")
    try:
        parts = urlsplit(text)
    except ValueError:  # e.g. an unclosed or non-address "[...]" host: was a traceback
        raise Bad(f"endpointUrl is not a URL s3dest can read; give one {example}.") from None
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
    netloc = parts.netloc.lower()
    address = parse_address(host)
    if address is not None:
        # Stored as the address it stands for (127.1 -> 127.0.0.1), so what runs later
        # is what was checked here.
        shown = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
        netloc = shown + (f":{port}" if port is not None else "")
    _check_reachable(host, port or (443 if scheme == "https" else 80), check_endpoint)
    canonical = f"{scheme}://{netloc}"
    if scheme == "http" and not _is_local_host(host):
        warnings.append(
            "endpointUrl uses http://, so credentials' signatures and every message cross "
            "the network unencrypted; use https:// unless the network is private."
        )
    return canonical


def _check_reachable(host: str, port: int, check_endpoint: EndpointChecker) -> None:
    widen = f"ask the operator to allow the host with {SETTING}"
    try:
        check_endpoint(host, port)
    except EndpointUnresolvable as unresolvable:
        raise Bad(
            f"endpointUrl cannot be checked: {unresolvable.reason}. Check the host name "
            "(s3dest resolves it when the destination is saved and again before every "
            f"connection), or {widen}."
        ) from None
    except EndpointRefused as refused:
        raise Bad(
            f"endpointUrl is not allowed: {refused.reason}. s3dest does not connect to "
            "loopback, private, link-local or cloud metadata addresses; use the storage "
            f"service's public address, or {widen}."
        ) from None


def _is_local_host(host: str) -> bool:
    host = host.lower()
    return host in ("localhost", "::1") or host.startswith("127.") or host.endswith(".localhost")
