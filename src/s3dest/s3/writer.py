"""The S3 writer: one PUT per message, through obstore (Rust `object_store`).

obstore was chosen by measurement: on this machine a boto3 ``put_object`` costs about
2.2 ms of CPU, obstore about 0.1–0.15 ms, and obstore sends ``x-amz-meta-*``,
``x-amz-storage-class``, ``If-None-Match`` and checksums (see bench/writer.py).

Retries are not done here: the writer makes one attempt and raises a classified
`DeliveryError`; the delivery loop owns the retry policy (Vector's shape: retries wrap
the sender, never live inside it). The one exception is a multipart upload's parts
(s3/multipart.py): each is retried alone, with the policy's backoff, so that one
transient fault does not send the whole body again.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import obstore
from obstore.store import S3Store

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig

from s3dest.errors import DeliveryError, MessageDeliveryError, OrphanedUpload
from s3dest.s3 import boto_client, credentials, egress, object_options, partitions, reply_text
from s3dest.s3.credentials import AssumedRole
from s3dest.s3.diagnosis import (
    Target,
    endpoint_not_allowed,
    from_client_error,
    is_region_redirect,
    redirect_not_followed,
)
from s3dest.s3.egress import EndpointRefused, Route
from s3dest.s3.egress_proxy import shared_proxy
from s3dest.s3.masking import mask_access_key_id
from s3dest.s3.metadata import check_metadata
from s3dest.s3.multipart import MultipartOptions, Upload
from s3dest.s3.policy import PolicyInputs, policy_inputs_for

# obstore builds its tokio runtime on first use, with one worker per core unless this is
# set. s3dest's PUTs run their request futures on its own sender threads (blocking put),
# so the runtime's workers only drive sockets; against the moto server one worker cost
# 0.1-0.2 ms less CPU per PUT than two (fewer cross-thread wake-ups). An explicit value
# in the environment wins.
os.environ.setdefault("TOKIO_WORKER_THREADS", "1")

CONTENT_TYPE = "application/json"
# Bodies given as bytes or a file (`s3dest put`) above this go up in parts; the worker's
# large bodies (above S3DEST_INLINE_BODY_BYTES) are streams and always do.
MULTIPART_THRESHOLD = 16 * 1024 * 1024


@dataclass(frozen=True)
class S3Destination:
    """Where and how to write; the secret and token never appear in repr().

    Credentials are the static keys, or `role` (assumed from s3dest's own identity, see
    `s3.credentials`), or with `use_chain` the identity itself (`s3dest put`)."""

    bucket: str
    region: str
    access_key_id: str = ""
    secret_access_key: str = field(default="", repr=False)
    session_token: str | None = field(default=None, repr=False)
    endpoint_url: str | None = None
    storage_class: str = "STANDARD"
    create_only: bool = False
    request_timeout_s: float = 30.0
    # The operator's own write (`s3dest put`): the endpoint policy protects the operator's
    # network from tenants, and does not apply to what the operator asks for directly.
    operator: bool = False
    role: AssumedRole | None = None
    use_chain: bool = False
    profile: str | None = None
    # SPEC §8: sent on every PUT (and CreateMultipartUpload), signed.
    server_side_encryption: str | None = None  # "AES256" | "aws:kms"
    kms_key_id: str | None = None
    bucket_key_enabled: bool | None = None
    acl: str | None = None  # a canned ACL (x-amz-acl)
    tags: tuple[tuple[str, str], ...] = ()  # x-amz-tagging

    @property
    def policy_inputs(self) -> PolicyInputs:
        return policy_inputs_for(
            bucket=self.bucket,
            region=self.region,
            acl=self.acl,
            tags=self.tags,
            server_side_encryption=self.server_side_encryption,
            kms_key_id=self.kms_key_id,
        )

    @property
    def target(self) -> Target:
        return Target(
            bucket=self.bucket,
            region=self.region,
            access_key_id_masked=mask_access_key_id(self.access_key_id),
            endpoint_url=self.endpoint_url,
            storage_class=self.storage_class,
            role_arn=self.role.role_arn if self.role else None,
            policy=self.policy_inputs,
        )


@dataclass(frozen=True, slots=True)
class ObjectRequest:
    """One object to write. The body is bytes, or a file or stream of chunks written as a
    multipart upload."""

    key: str
    body: bytes | Path | Iterator[bytes]
    metadata: dict[str, str]
    event_id: str
    # A batch (SPEC §9) is JSON Lines, maybe compressed (Content-Encoding).
    content_type: str = CONTENT_TYPE
    content_encoding: str | None = None


@dataclass(frozen=True, slots=True)
class PutOutcome:
    etag: str | None
    version: str | None
    # create-only mode: the object was already written by an earlier attempt of this message.
    already_present: bool = False
    # A multipart upload left behind (its abort was refused), for the orphan list.
    orphan: OrphanedUpload | None = None


@dataclass(frozen=True, slots=True)
class _Client:
    store: S3Store
    # Set when the client's connections go through the egress proxy: its name there, by
    # which the proxy reports a refusal.
    proxy_id: str | None = None


def _route(dest: S3Destination) -> Route:
    """How this destination's connections are made (SPEC §7); raises EndpointRefused.

    AWS's own S3 endpoints go direct: their names are in AWS's zones, which no tenant can
    make resolve elsewhere. So do the hosts the operator allow-listed (by name, or as an
    address inside a listed CIDR) — the operator vouched for them — and allowed literal
    addresses, which no lookup can change. Every other name goes through the egress
    proxy, which checks the address it connects to on every connection, so a name that
    passed at save time and now resolves to a refused address (DNS rebinding) is refused.
    """
    if not dest.endpoint_url or dest.operator:
        return Route.DIRECT
    host = urlsplit(dest.endpoint_url).hostname or ""
    return egress.current().route(host)


def _client(dest: S3Destination) -> _Client:
    if _route(dest) is Route.DIRECT:
        return _Client(_store(dest))
    proxy_id = secrets.token_hex(8)
    return _Client(_store(dest, proxy_url=shared_proxy().url_for(proxy_id)), proxy_id)


def _store(dest: S3Destination, *, proxy_url: str | None = None) -> S3Store:
    config: dict[str, Any] = {"checksum_algorithm": "SHA256"}
    config.update(object_options.obstore_config(dest))  # credentials, encryption (SPEC §8)
    config.update(_addressing(dest))
    client_options: ClientConfig = {
        "timeout": timedelta(seconds=dest.request_timeout_s),
        "connect_timeout": timedelta(seconds=min(10.0, dest.request_timeout_s)),
        "allow_http": bool(dest.endpoint_url and dest.endpoint_url.startswith("http://")),
    }
    if proxy_url is not None:
        client_options["proxy_url"] = proxy_url
    headers = object_options.obstore_headers(dest)
    if headers:
        client_options["default_headers"] = headers
    retry: RetryConfig = {
        "max_retries": 0,
        "retry_timeout": timedelta(seconds=dest.request_timeout_s),
        "backoff": {
            "init_backoff": timedelta(milliseconds=100),
            "max_backoff": timedelta(seconds=1),
            "base": 2.0,
        },
    }
    return S3Store(
        dest.bucket,
        region=dest.region,
        client_options=client_options,
        retry_config=retry,
        **config,
    )


def _addressing(dest: S3Destination) -> dict[str, Any]:
    """Path-style on a custom endpoint; on AWS the partition's own host (amazonaws.com.cn
    in China), virtual-hosted unless the bucket's name has a dot."""
    if dest.endpoint_url:
        return {"endpoint": dest.endpoint_url.rstrip("/"), "virtual_hosted_style_request": False}
    host = partitions.s3_host(dest.region)
    if partitions.virtual_hosted(dest.bucket):
        return {"endpoint": f"https://{dest.bucket}.{host}", "virtual_hosted_style_request": True}
    return {"endpoint": f"https://{host}", "virtual_hosted_style_request": False}


class _StoreCache:
    """One client per destination configuration: connections are reused across PUTs.

    A refused destination gets no client (the policy is asked again on the next PUT), and
    a new policy drops every client built under the old one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stores: dict[S3Destination, _Client] = {}

    def get(self, dest: S3Destination) -> _Client:
        client = self._stores.get(dest)
        if client is None:
            with self._lock:
                client = self._stores.get(dest)
                if client is None:
                    if len(self._stores) > 256:
                        self._stores.clear()
                    client = _client(dest)
                    self._stores[dest] = client
        return client

    def clear(self) -> None:
        with self._lock:
            self._stores.clear()


_cache = _StoreCache()
egress.on_change(_cache.clear)
egress.on_change(boto_client.clear)


def _attributes(dest: S3Destination, request: ObjectRequest) -> dict[str, str]:
    attributes = {"Content-Type": request.content_type, "Storage-Class": dest.storage_class}
    if request.content_encoding:
        attributes["Content-Encoding"] = request.content_encoding
    attributes.update(request.metadata)
    return attributes


def _is_large(request: ObjectRequest) -> bool:
    if isinstance(request.body, Path):
        return os.path.getsize(request.body) > MULTIPART_THRESHOLD
    if isinstance(request.body, bytes):
        return len(request.body) > MULTIPART_THRESHOLD
    return True  # a stream: only large bodies are stored in chunks


def _precondition_outcome(dest: S3Destination, request: ObjectRequest) -> PutOutcome:
    """create-only: a 412 on a key that carries our event-id is our own earlier attempt."""
    if request.event_id and request.event_id in request.key:
        return PutOutcome(etag=None, version=None, already_present=True)
    raise MessageDeliveryError(
        f"key collision: an object already exists at '{request.key}' in bucket "
        f"'{dest.bucket}', and the destination's writeMode is create-only, so it was not "
        'overwritten. Include metadata."event-id" in the key template to give every message '
        "its own key.",
        s3_code="PreconditionFailed",
        status=412,
    )


def _check_key_representable(key: str) -> None:
    # object_store normalises paths (drops a leading or trailing '/', rejects '//', '.'
    # and '..' segments); refuse such keys rather than write a different key than rendered.
    if key.startswith("/") or key.endswith("/") or "//" in key:
        raise MessageDeliveryError(
            f"the key {key!r} has an empty path segment (a leading or trailing '/' or '//'); "
            "a field used in the key template is probably empty for this message. Change the "
            'template (for example use metadata."event-id") and replay the message.'
        )
    if any(part in (".", "..") for part in key.split("/")):
        raise MessageDeliveryError(
            f"the key {key!r} has a '.' or '..' segment, which S3 clients resolve as a "
            "relative path; change the key template"
        )


@dataclass(frozen=True, slots=True)
class PreparedPut:
    """A checked request with obstore's arguments, ready to send (see `prepare_put`)."""

    dest: S3Destination
    request: ObjectRequest
    body: Any
    kwargs: dict[str, Any]
    multipart: bool = False


def prepare_put(dest: S3Destination, request: ObjectRequest) -> PreparedPut:
    """Check the request and build the call; a MessageDeliveryError says what is wrong.

    Apart from `send_put` so that a caller can prepare a batch of requests in one pass on
    one thread and leave only the PUT itself to the threads that wait on S3.
    """
    body, kwargs = _put_args(dest, request)
    if _is_large(request):
        return PreparedPut(dest, request, request.body, kwargs, multipart=True)
    return PreparedPut(dest, request, body, kwargs)


_DEFAULT_MULTIPART = MultipartOptions()


def send_put(prepared: PreparedPut, multipart: MultipartOptions = _DEFAULT_MULTIPART) -> PutOutcome:
    """Write one prepared object (blocking). Raises a classified DeliveryError."""
    dest, request = prepared.dest, prepared.request
    try:
        client = _cache.get(dest)
    except EndpointRefused as refused:  # before any connection: the same whatever listens
        raise endpoint_not_allowed(refused.reason, dest.target) from None
    if dest.role is not None:
        # On this thread, before obstore asks its provider: STS's refusal is diagnosed
        # here (no identity, the role refuses s3dest, ...), and renewal happens here.
        credentials.frozen(dest.role, dest.region)
    started = time.monotonic()
    if prepared.multipart:
        return _send_multipart(prepared, client, multipart, started)
    try:
        return _outcome(obstore.put(client.store, request.key, prepared.body, **prepared.kwargs))
    except DeliveryError:
        raise
    except Exception as exc:  # translated exactly once, here
        if client.proxy_id is not None:
            reason = shared_proxy().refusal_since(client.proxy_id, started)
            if reason is not None:
                raise endpoint_not_allowed(reason, dest.target) from None
            if _lost_proxy_credentials(str(exc)):
                raise redirect_not_followed(dest.target, None) from None
        region = _probe_bucket_region(dest, client) if is_region_redirect(str(exc)) else None
        return _handle(dest, request, exc, region)


def _lost_proxy_credentials(text: str) -> bool:
    """The egress proxy asked for credentials: reqwest followed a redirect to another
    host and dropped the Proxy-Authorization of the first request (the proxy refuses it
    then, before resolving anything)."""
    return "ProxyAuthRequired" in text or "407 Proxy Authentication Required" in text


def _put_args(dest: S3Destination, request: ObjectRequest) -> tuple[Any, dict[str, Any]]:
    _check_key_representable(request.key)
    # Refuse bad metadata here, as a message error: non-ASCII values otherwise come back as
    # SignatureDoesNotMatch (blaming the destination) and control characters make
    # object_store panic.
    check_metadata(request.metadata)
    if _is_large(request):
        return request.body, {}
    kwargs: dict[str, Any] = {"attributes": _attributes(dest, request), "use_multipart": False}
    if dest.tags:
        kwargs["tags"] = dict(dest.tags)
    body = request.body.read_bytes() if isinstance(request.body, Path) else request.body
    assert isinstance(body, bytes)
    if dest.create_only:
        kwargs["mode"] = "create"
    return body, kwargs


# -- large bodies: s3/multipart.py over botocore -------------------------------------------


def multipart_client_spec(
    dest: S3Destination, proxy_id: str | None, max_connections: int
) -> boto_client.ClientSpec:
    """How the multipart client of `dest` is built: the same credentials, endpoint and
    route as its obstore client."""
    return boto_client.ClientSpec(
        region=dest.region,
        endpoint_url=dest.endpoint_url.rstrip("/") if dest.endpoint_url else None,
        **object_options.multipart_credentials(dest),
        timeout_s=dest.request_timeout_s,
        path_style=bool(dest.endpoint_url) or not partitions.virtual_hosted(dest.bucket),
        proxy_id=proxy_id,
        max_connections=max_connections + 2,
    )


def multipart_create_args(dest: S3Destination, request: ObjectRequest) -> dict[str, Any]:
    """CreateMultipartUpload's arguments: what a small PUT sends as headers (content type,
    storage class, metadata, and SPEC §8's encryption, ACL and tags), in botocore's names."""
    return {
        "ContentType": request.content_type,
        **({"ContentEncoding": request.content_encoding} if request.content_encoding else {}),
        "StorageClass": dest.storage_class,
        "Metadata": dict(request.metadata),
        **object_options.multipart_extras(dest),
    }


def _send_multipart(
    prepared: PreparedPut, client: _Client, options: MultipartOptions, started: float
) -> PutOutcome:
    dest, request = prepared.dest, prepared.request
    upload = Upload(
        boto_client.client_for(multipart_client_spec(dest, client.proxy_id, options.concurrency)),
        bucket=dest.bucket,
        key=request.key,
        create_args=multipart_create_args(dest, request),
        create_only=dest.create_only,
        target=dest.target,
        options=options,
    )
    try:
        done = upload.run(prepared.body)
    except DeliveryError as error:
        if client.proxy_id is not None:
            reason = shared_proxy().refusal_since(client.proxy_id, started)
            if reason is not None:
                refused = endpoint_not_allowed(reason, dest.target)
                refused.orphan = error.orphan
                raise refused from None
        raise
    if done.already_present:
        try:
            _precondition_outcome(dest, request)  # raises on a collision
        except DeliveryError as collision:
            collision.orphan = done.orphan
            raise
        return PutOutcome(None, None, already_present=True, orphan=done.orphan)
    return PutOutcome(done.etag, done.version, orphan=done.orphan)


def _outcome(result: Any) -> PutOutcome:
    # Shown to the tenant and stored: kept only when they look like what they claim to be.
    return PutOutcome(
        etag=reply_text.etag(result.get("e_tag")),
        version=reply_text.version_id(result.get("version")),
    )


def put_object(dest: S3Destination, request: ObjectRequest) -> PutOutcome:
    """Write one object (blocking). Raises a classified DeliveryError."""
    return send_put(prepare_put(dest, request))


def _handle(
    dest: S3Destination, request: ObjectRequest, exc: Exception, region: str | None = None
) -> PutOutcome:
    # object_store maps 409 Conflict to AlreadyExists too; S3's 409 ConditionalRequestConflict
    # means "retry", not "the object is there", so only a 412 is a precondition outcome.
    if type(exc).__name__ in ("AlreadyExistsError", "PreconditionError") and (
        "status code: 409" not in str(exc)
    ):
        return _precondition_outcome(dest, request)
    if isinstance(exc, ValueError) and "parse path" in str(exc):
        raise MessageDeliveryError(f"S3 cannot store the key {request.key!r}: {exc}") from None
    raise from_client_error(exc, dest.target, region_header=region) from None


# -- the bucket's real region after a 301 ---------------------------------------------------
# object_store drops the body and headers of S3's PermanentRedirect, so the region is asked
# for with an anonymous HEAD of the bucket: S3 answers it (301 or 403) with
# x-amz-bucket-region. It is unsigned, so it needs no permission and sends no credentials.
_PROBE_TIMEOUT_S = 5.0


def _bucket_url(dest: S3Destination) -> str:
    base = (dest.endpoint_url or f"https://{partitions.s3_host(dest.region)}").rstrip("/")
    return f"{base}/{dest.bucket}"


def _probe_bucket_region(dest: S3Destination, client: _Client) -> str | None:
    # The same route as the PUT: a proxied destination's probe is checked by the proxy too.
    # httpx follows no redirect unless asked to.
    proxy = shared_proxy().url_for(client.proxy_id) if client.proxy_id else None
    try:
        response = httpx.head(_bucket_url(dest), timeout=_PROBE_TIMEOUT_S, proxy=proxy)
    except httpx.HTTPError:
        return None
    return reply_text.region(response.headers.get("x-amz-bucket-region"))
