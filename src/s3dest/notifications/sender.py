"""One webhook POST, under the endpoint policy (SPEC §7): the host is resolved and every
address checked, and the connection goes to the checked address (the Host header and TLS
server name stay the URL's), so a name that resolves elsewhere a moment later is not
followed there. Redirects are not followed; the response body is not read."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

from s3dest import __version__
from s3dest.s3.egress import EndpointRefused, current

TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Sent:
    status: int | None  # the HTTP status, None when no response came
    error: str | None  # why it did not succeed, in words (None for a 2xx)

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def post(url: str, body: str, headers: dict[str, str], timeout: float = TIMEOUT_SECONDS) -> Sent:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        address = current().connect_address(host, port)
    except EndpointRefused as refused:
        return Sent(None, f"refused by the endpoint policy: {refused.reason}")
    target = url
    extensions: dict[str, str] = {}
    if address is not None:
        shown = (
            f"[{address}]"
            if isinstance(ipaddress.ip_address(address), ipaddress.IPv6Address)
            else address
        )
        netloc = shown + (f":{parts.port}" if parts.port else "")
        target = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        if parts.scheme == "https":
            extensions["sni_hostname"] = host
    sent_headers = {
        **headers,
        "content-type": "application/json",
        "user-agent": f"s3dest-webhooks/{__version__}",
        "host": parts.netloc.rsplit("@", 1)[-1],
    }
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client,
            client.stream(
                "POST", target, content=body.encode(), headers=sent_headers, extensions=extensions
            ) as response,
        ):
            status = response.status_code
    except httpx.TimeoutException:
        return Sent(None, f"no response within {timeout:.0f} s")
    except httpx.HTTPError as exc:
        return Sent(None, f"could not connect: {type(exc).__name__}: {str(exc)[:200]}")
    if 200 <= status < 300:
        return Sent(status, None)
    return Sent(status, f"the endpoint answered HTTP {status}")
