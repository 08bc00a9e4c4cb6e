"""botocore's S3 client for multipart uploads (s3/multipart.py): built once per destination
configuration and reused, like the writer's obstore clients.

A role destination's client (and the chain's, `s3dest put`) is built around a credential
source, not keys: botocore's refreshable credentials, which its signer asks before every
request, so a cached client and an upload longer than a session both sign with the
current credentials. botocore takes such credentials only from a session's credential
provider, hence one session per source (sharing the first session's data loader: the
service models are parsed once per process).

botocore does no retries here (the multipart module retries each part with the delivery
policy's backoff), computes no checksum it is not required to (RGW 16 does not know the
newer x-amz-checksum trailers; parts carry Content-MD5 instead), and addresses buckets
the way the writer does: virtual-hosted on AWS, path-style on a custom endpoint.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from s3dest.s3.egress_proxy import shared_proxy

if TYPE_CHECKING:
    from botocore.config import Config


class CredentialSource(Hashable, Protocol):
    """Credentials that renew themselves (s3.credentials.RoleSource, ChainSource)."""

    def botocore_credentials(self) -> Any: ...


@dataclass(frozen=True)
class ClientSpec:
    """What a client is built from; equal specs share one client. Credentials: static
    keys, or `renewing`."""

    region: str
    endpoint_url: str | None
    timeout_s: float
    path_style: bool
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    renewing: CredentialSource | None = None
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
            if spec.renewing is not None:
                session = _session_with(spec.renewing.botocore_credentials(), _session)
                client = session.create_client(
                    "s3",
                    region_name=spec.region,
                    endpoint_url=spec.endpoint_url,
                    config=_config(spec),
                )
            else:
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


def _session_with(credentials: Any, base: Any) -> Any:
    """A botocore session whose only credentials are `credentials`."""
    import botocore.credentials
    import botocore.session

    session = botocore.session.Session()
    session.register_component("data_loader", base.get_component("data_loader"))
    resolver = botocore.credentials.CredentialResolver([_given_provider()(credentials)])
    session.register_component("credential_provider", resolver)
    return session


@functools.cache
def _given_provider() -> Any:
    """botocore's CredentialProvider that hands out one credentials object (defined on
    first use: botocore is imported lazily, see client_for)."""
    import botocore.credentials

    class Given(botocore.credentials.CredentialProvider):  # type: ignore[misc]
        METHOD = "s3dest"

        def __init__(self, credentials: Any) -> None:
            super().__init__()
            self._credentials = credentials

        def load(self) -> Any:
            return self._credentials

    return Given


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
