"""s3dest's own AWS identity, and the roles it assumes with it (SPEC §8).

The credential chain is botocore's, not ours: environment variables, the shared config
and credentials files (profiles, `source_profile`/`role_arn` chains, SSO), web identity
(EKS IRSA), ECS container and EC2 instance metadata — whatever `botocore.session.Session`
resolves. A role destination's credentials come from `sts:AssumeRole` on that identity
(botocore's `AssumeRoleCredentialFetcher`), with the destination's external id and a
session name naming s3dest and the destination; botocore's `RefreshableCredentials`
renews them `refresh_before_seconds` before they expire. Each process holds its own
(one per role, external id and region), so every worker renews on its own.

obstore takes them through its `credential_provider` hook (`ObstoreProvider`). The
writer also asks `frozen()` before each PUT, on its own thread: a failure of STS then
raises a classified `DeliveryError` with its diagnosis (s3dest has no identity, the
role refuses it, ...) instead of an opaque object-store error. The multipart client
(botocore's) takes a `RoleSource` or `ChainSource`: botocore refreshable credentials
fed from the same cache, which its signer asks before every request, so the parts of
an upload that outlives a renewal are signed with the renewed credentials.

STS's endpoint is the operator's setting (`S3DEST_STS_ENDPOINT_URL`, unset: AWS's
regional endpoint); no tenant value reaches it.
"""

from __future__ import annotations

import functools
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from s3dest.errors import DeliveryError, TransientDeliveryError
from s3dest.s3 import role_diagnosis

if TYPE_CHECKING:
    import botocore.session
    from botocore.credentials import ReadOnlyCredentials
    from obstore.store import S3Credential

# botocore is imported on first use (`_botocore`): it costs about a second of start-up,
# which every `s3dest` command would pay, and only role destinations and `s3dest put`
# need it.

__all__ = [
    "AssumedRole",
    "ChainProvider",
    "ChainSource",
    "Identity",
    "ObstoreProvider",
    "RoleSource",
    "StsConfig",
    "chain_provider",
    "configure",
    "frozen",
    "identity",
    "provider",
    "session_name",
]

# obstore renews a credential when less than this is left of what the provider said
# (object_store's TokenCache min_ttl); see ObstoreProvider.
_OBSTORE_MIN_TTL = timedelta(seconds=300)
_IDENTITY_TTL_S = 300.0
_NO_IDENTITY_TTL_S = 30.0
_STS_CONFIG = {
    "connect_timeout": 5,
    "read_timeout": 10,
    "retries": {"total_max_attempts": 2, "mode": "standard"},
}


@functools.cache
def _botocore() -> Any:
    """botocore's modules, imported once, with our subclass of its credentials."""
    import botocore.config
    import botocore.credentials
    import botocore.exceptions
    import botocore.session

    class Refreshable(botocore.credentials.DeferredRefreshableCredentials):  # type: ignore[misc]
        """botocore's refreshable credentials, renewed `advisory` seconds before expiry
        (and refused once `mandatory` is reached without a renewal)."""

        def __init__(self, refresh_using: Any, advisory: float, mandatory: float) -> None:
            super().__init__(refresh_using=refresh_using, method="assume-role")
            self._advisory_refresh_timeout = advisory
            self._mandatory_refresh_timeout = mandatory

    class Modules:
        session = botocore.session
        credentials = botocore.credentials
        exceptions = botocore.exceptions
        config = botocore.config.Config(**_STS_CONFIG)
        refreshable = Refreshable

    return Modules


@dataclass(frozen=True, slots=True)
class StsConfig:
    endpoint_url: str | None = None
    session_seconds: int = 3600
    refresh_before_seconds: float = 900.0


@dataclass(frozen=True, slots=True)
class AssumedRole:
    """The role a destination writes as. The external id is not a secret, but only
    s3dest sets it (one per destination), so a tenant cannot borrow another's role."""

    role_arn: str
    external_id: str | None  # always set for destinations; `s3dest put` may omit it
    session_name: str
    # The profile of the chain to assume it from (`s3dest put --profile`); None: the
    # process's own identity, as workers do.
    source_profile: str | None = None


@dataclass(frozen=True, slots=True)
class Identity:
    """s3dest's own principal, as STS names it (`sts:GetCallerIdentity`)."""

    arn: str
    account: str

    @property
    def principal_arn(self) -> str:
        """What a trust policy names: an assumed role's session becomes its role."""
        parts = self.arn.split(":", 5)
        if len(parts) == 6 and parts[2] == "sts" and parts[5].startswith("assumed-role/"):
            role = parts[5].split("/")[1]
            return f"arn:{parts[1]}:iam::{parts[4]}:role/{role}"
        return self.arn


def session_name(destination_id: str) -> str:
    """RoleSessionName: CloudTrail in the customer's account shows who and for what."""
    return f"s3dest-{destination_id}"[:64]


_lock = threading.Lock()
_config = StsConfig()
_session: botocore.session.Session | None = None
_roles: dict[tuple[AssumedRole, str], _RoleCredentials] = {}
_identity: tuple[float, Identity | None] | None = None


def configure(config: StsConfig) -> None:
    """Install the operator's STS settings; credentials built under others are dropped."""
    global _config, _identity
    with _lock:
        _config = config
        _roles.clear()
        _identity = None


def _botocore_session() -> botocore.session.Session:
    global _session
    with _lock:
        if _session is None:
            _session = _botocore().session.Session()
        return _session


_source_lock = threading.Lock()


def _source_credentials(profile: str | None = None) -> Any:
    """s3dest's own credentials from the chain (resolved once per process; botocore
    renews temporary ones itself), or those of a profile of it; or None."""
    if profile is not None:
        return chain_provider(profile).found()
    session = _botocore_session()
    with _source_lock:  # the first resolution walks the chain: once, not per thread
        return session.get_credentials()


def _sts_client(region: str, service: str = "sts", **credentials: Any) -> Any:
    """An STS client (AssumeRoleCredentialFetcher calls it as client_creator("sts", keys))."""
    session = _botocore_session()
    with _lock:  # creating clients on one session is not thread-safe
        return session.create_client(
            service,
            region_name=region,
            endpoint_url=_config.endpoint_url,
            config=_botocore().config,
            **credentials,
        )


class _RoleCredentials:
    def __init__(self, role: AssumedRole, region: str, config: StsConfig) -> None:
        self.role = role
        self._region = region
        self._config = config
        self._build_lock = threading.Lock()
        self._credentials: Any = None
        self.expiry: datetime | None = None
        # STS's latest answer in botocore's names (access_key, ..., expiry_time)
        self._fetched: dict[str, Any] = {}

    def _build(self) -> Any:
        source = _source_credentials(self.role.source_profile)
        if source is None:
            raise role_diagnosis.no_identity(self.role.role_arn)
        extra_args: dict[str, Any] = {
            "RoleSessionName": self.role.session_name,
            "DurationSeconds": self._config.session_seconds,
        }
        if self.role.external_id is not None:
            extra_args["ExternalId"] = self.role.external_id
        fetcher = _botocore().credentials.AssumeRoleCredentialFetcher(
            client_creator=functools.partial(_sts_client, self._region),
            source_credentials=source,
            role_arn=self.role.role_arn,
            extra_args=extra_args,
            expiry_window_seconds=int(self._config.refresh_before_seconds),
        )

        def refresh() -> dict[str, Any]:
            fetched: dict[str, Any] = fetcher.fetch_credentials()
            self.expiry = datetime.fromisoformat(fetched["expiry_time"])
            self._fetched = fetched
            return fetched

        advisory = self._config.refresh_before_seconds
        return _botocore().refreshable(refresh, advisory=advisory, mandatory=advisory / 2)

    def frozen(self) -> ReadOnlyCredentials:
        errors = _botocore().exceptions
        with self._build_lock:
            if self._credentials is None:
                self._credentials = self._build()
            credentials = self._credentials
        try:
            found: ReadOnlyCredentials = credentials.get_frozen_credentials()
            return found
        except DeliveryError:
            raise
        except errors.NoCredentialsError:
            raise role_diagnosis.no_identity(self.role.role_arn) from None
        except errors.ClientError as exc:
            error = exc.response.get("Error", {})
            raise role_diagnosis.assume_role_failed(
                code=error.get("Code"),
                message=str(error.get("Message", "")),
                role_arn=self.role.role_arn,
                external_id=self.role.external_id,
                principal_arn=_principal_or_none(self.role.source_profile),
            ) from None
        except errors.BotoCoreError as exc:  # connection errors included
            raise TransientDeliveryError(
                f"could not reach STS to assume the role ({type(exc).__name__}); retrying",
                s3_code=None,
                status=None,
            ) from None

    def metadata(self) -> dict[str, Any]:
        """The current credentials with their expiry (renewed first when due), as
        botocore's refreshable credentials take them; raises a classified DeliveryError."""
        self.frozen()
        return dict(self._fetched)  # one answer of STS: keys and expiry belong together


def _principal_or_none(profile: str | None) -> str | None:
    try:
        found = identity(profile)
    except DeliveryError:
        return None
    return found.principal_arn if found else None


def _role_credentials(role: AssumedRole, region: str) -> _RoleCredentials:
    with _lock:
        key = (role, region)
        found = _roles.get(key)
        if found is None:
            if len(_roles) > 1024:
                _roles.clear()
            found = _roles[key] = _RoleCredentials(role, region, _config)
        return found


def frozen(role: AssumedRole, region: str) -> ReadOnlyCredentials:
    """The role's current credentials (assumed or renewed when needed); raises a
    classified DeliveryError."""
    return _role_credentials(role, region).frozen()


class ObstoreProvider:
    """obstore's `credential_provider` for one role: botocore's credentials, and an expiry
    that makes obstore ask again when botocore renews them."""

    def __init__(self, role: AssumedRole, region: str) -> None:
        self._role = role
        self._region = region

    def __call__(self) -> S3Credential:
        holder = _role_credentials(self._role, self._region)
        current = holder.frozen()
        renew_at = (
            holder.expiry - timedelta(seconds=_config.refresh_before_seconds)
            if holder.expiry
            else datetime.now(UTC)
        )
        # obstore asks again once less than its min_ttl is left: say the credential
        # ends min_ttl after the moment botocore renews it, but never after it really ends.
        expires_at = renew_at + _OBSTORE_MIN_TTL
        if holder.expiry is not None:
            expires_at = min(expires_at, holder.expiry)
        return {
            "access_key_id": current.access_key,
            "secret_access_key": current.secret_key,
            "token": current.token,
            "expires_at": expires_at,
        }


def provider(role: AssumedRole, region: str) -> ObstoreProvider:
    return ObstoreProvider(role, region)


@dataclass(frozen=True, slots=True)
class RoleSource:
    """A role's credentials for a botocore client (equal sources, one client)."""

    role: AssumedRole
    region: str

    def botocore_credentials(self) -> Any:
        """botocore refreshable credentials that renew when the cache does (same
        advisory window) and take what it holds: one AssumeRole per renewal for obstore
        and botocore together. Looked up on every refresh, so `configure` reaches them."""
        advisory = _config.refresh_before_seconds
        return _botocore().refreshable(
            lambda: _role_credentials(self.role, self.region).metadata(),
            advisory=advisory,
            mandatory=advisory / 2,
        )


class ChainProvider:
    """obstore's `credential_provider` for s3dest's own identity (`s3dest put`): the
    chain's current credentials, asked for again every minute (botocore renews
    temporary ones itself)."""

    def __init__(self, profile: str | None) -> None:
        self._session = _botocore().session.Session(profile=profile)
        self._lock = threading.Lock()

    def has_identity(self) -> bool:
        return self.found() is not None

    def found(self) -> Any:
        """botocore's credentials of the chain (refreshable when they are temporary), or
        None."""
        with self._lock:
            return self._session.get_credentials()

    def credentials(self) -> Any:
        found = self.found()
        if found is None:
            raise _botocore().exceptions.NoCredentialsError()
        return found

    def __call__(self) -> S3Credential:
        current = self.credentials().get_frozen_credentials()
        return {
            "access_key_id": current.access_key,
            "secret_access_key": current.secret_key,
            "token": current.token,
            "expires_at": datetime.now(UTC) + _OBSTORE_MIN_TTL + timedelta(seconds=60),
        }


@functools.lru_cache(maxsize=8)
def chain_provider(profile: str | None) -> ChainProvider:
    return ChainProvider(profile)


@dataclass(frozen=True, slots=True)
class ChainSource:
    """s3dest's own identity (a profile of the chain) for a botocore client."""

    profile: str | None

    def botocore_credentials(self) -> Any:
        return chain_provider(self.profile).credentials()


def identity(profile: str | None = None) -> Identity | None:
    """s3dest's own principal (None: it has none), cached for a few minutes; raises a
    TransientDeliveryError when STS cannot be asked. With `profile`, that profile's
    principal (`s3dest put`: asked once, not cached)."""
    global _identity
    now = time.monotonic()
    with _lock:
        cached = _identity
    if profile is None and cached is not None and now < cached[0]:
        return cached[1]
    session = _botocore_session()
    errors = _botocore().exceptions
    source = _source_credentials(profile)
    if source is None:
        found = None
    else:
        region = session.get_config_variable("region") or "us-east-1"
        frozen = source.get_frozen_credentials()
        keys = {
            "aws_access_key_id": frozen.access_key,
            "aws_secret_access_key": frozen.secret_key,
            "aws_session_token": frozen.token,
        }
        try:
            reply = _sts_client(region, **keys).get_caller_identity()
        except errors.NoCredentialsError:
            reply = None
        except errors.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code") or "error"
            raise role_diagnosis.identity_invalid(code, "(any role)") from None
        except errors.BotoCoreError as exc:
            raise TransientDeliveryError(
                f"could not reach STS ({type(exc).__name__})", s3_code=None, status=None
            ) from None
        found = Identity(arn=reply["Arn"], account=reply["Account"]) if reply else None
    if profile is not None:
        return found
    ttl = _IDENTITY_TTL_S if found else _NO_IDENTITY_TTL_S
    with _lock:
        _identity = (now + ttl, found)
    return found
