"""botocore's S3 client for multipart uploads (s3/multipart.py): built once per destination
configuration and reused, like the writer's obstore clients.

botocore does no retries here (the multipart module retries each part with the delivery
policy's backoff), computes no checksum it is not required to (RGW 16 does not know the
newer x-amz-checksum trailers; parts carry Content-MD5 instead), and addresses buckets
the way the writer does: virtual-hosted on AWS, path-style on a custom endpoint.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from s3dest.s3.egress_proxy import shared_proxy

if TYPE_CHECKING:
    from botocore.config import Config


@dataclass(frozen=True)
class ClientSpec:
    """What a client is built from; equal specs share one client."""

    region: str
    endpoint_url: str | None
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(repr=False)
    timeout_s: float
    path_style: bool
    # The egress proxy's name for this destination's connections (SPEC §7), if proxied.
    proxy_id: str | None = None
    max_connections: int = 10


_lock = threading.Lock()
_clients: dict[ClientSpec, Any] = {}
_session: Any = None


def client_for(spec: ClientSpec) -> Any:
    """The (thread-safe) botocore client of `spec`; creating one is not thread-safe."""
    client = _clients.get(spec)
    if client is not None:
        return client
    global _session
    with _lock:
        client = _clients.get(spec)
        if client is None:
            if _session is None:
                # botocore is imported here, not at the top: only bodies above the inline
                # threshold need it, and every `s3dest serve` start would pay ~0.3 s CPU.
                import botocore.session

                _session = botocore.session.get_session()
            if len(_clients) > 64:
                _clients.clear()
            client = _session.create_client(
                "s3",
                region_name=spec.region,
                endpoint_url=spec.endpoint_url,
                aws_access_key_id=spec.access_key_id,
                aws_secret_access_key=spec.secret_access_key,
                aws_session_token=spec.session_token,
                config=_config(spec),
            )
            _clients[spec] = client
    return client


def clear() -> None:
    with _lock:
        _clients.clear()


def _config(spec: ClientSpec) -> Config:
    from botocore.config import Config

    options: dict[str, Any] = {}
    if spec.proxy_id is not None:
        url = shared_proxy().url_for(spec.proxy_id)
        options["proxies"] = {"http": url, "https": url}
    return Config(
        signature_version="s3v4",
        s3={"addressing_style": "path" if spec.path_style else "virtual"},
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=min(10.0, spec.timeout_s),
        read_timeout=spec.timeout_s,
        max_pool_connections=spec.max_connections,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        user_agent_extra="s3dest",
        **options,
    )
