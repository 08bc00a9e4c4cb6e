"""How SPEC §8's destination options reach S3 (used by s3/writer.py): whose credentials
sign (static keys, an assumed role, or s3dest's own chain), and the encryption, canned
ACL and tags every object carries — for obstore's small PUTs and botocore's multipart
uploads alike."""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import urlencode

from s3dest.s3 import credentials
from s3dest.s3.credentials import AssumedRole

__all__ = ["Options", "multipart_credentials", "multipart_extras", "obstore_config"]


class Options(Protocol):
    """The fields of `writer.S3Destination` read here."""

    @property
    def region(self) -> str: ...
    @property
    def access_key_id(self) -> str: ...
    @property
    def secret_access_key(self) -> str: ...
    @property
    def session_token(self) -> str | None: ...
    @property
    def role(self) -> AssumedRole | None: ...
    @property
    def use_chain(self) -> bool: ...
    @property
    def profile(self) -> str | None: ...
    @property
    def server_side_encryption(self) -> str | None: ...
    @property
    def kms_key_id(self) -> str | None: ...
    @property
    def bucket_key_enabled(self) -> bool | None: ...
    @property
    def acl(self) -> str | None: ...
    @property
    def tags(self) -> tuple[tuple[str, str], ...]: ...


def obstore_config(dest: Options) -> dict[str, Any]:
    """S3Store's credential and encryption settings."""
    config: dict[str, Any] = {}
    if dest.role is not None:
        config["credential_provider"] = credentials.provider(dest.role, dest.region)
    elif dest.use_chain:
        config["credential_provider"] = credentials.chain_provider(dest.profile)
    else:
        config["access_key_id"] = dest.access_key_id
        config["secret_access_key"] = dest.secret_access_key
        if dest.session_token:
            config["token"] = dest.session_token
    if dest.server_side_encryption:
        config["server_side_encryption"] = dest.server_side_encryption
    if dest.kms_key_id:
        config["sse_kms_key_id"] = dest.kms_key_id
    if dest.bucket_key_enabled is not None:
        config["sse_bucket_key_enabled"] = dest.bucket_key_enabled
    return config


def obstore_headers(dest: Options) -> dict[str, str]:
    """Headers obstore's client adds to every request. object_store has no ACL attribute;
    its default headers are added before the request is signed (SignedHeaders includes
    x-amz-acl: tests/integration/test_bucket_options.py checks the wire), as S3 requires
    of every x-amz-* header."""
    return {"x-amz-acl": dest.acl} if dest.acl is not None else {}


def multipart_credentials(dest: Options) -> dict[str, Any]:
    """The multipart client's credentials (boto_client.ClientSpec's fields): a role's or
    the chain's as a source botocore asks before every request, which renews them (an
    upload may outlive a session); static keys as they are."""
    if dest.role is not None:
        return {"renewing": credentials.RoleSource(dest.role, dest.region)}
    if dest.use_chain:
        return {"renewing": credentials.ChainSource(dest.profile)}
    return {
        "access_key_id": dest.access_key_id,
        "secret_access_key": dest.secret_access_key,
        "session_token": dest.session_token,
    }


def multipart_extras(dest: Options) -> dict[str, Any]:
    """CreateMultipartUpload's arguments for encryption, ACL and tags (botocore's names)."""
    args: dict[str, Any] = {}
    if dest.server_side_encryption:
        args["ServerSideEncryption"] = dest.server_side_encryption
    if dest.kms_key_id:
        args["SSEKMSKeyId"] = dest.kms_key_id
    if dest.bucket_key_enabled is not None:
        args["BucketKeyEnabled"] = dest.bucket_key_enabled
    if dest.acl is not None:
        args["ACL"] = dest.acl
    if dest.tags:
        args["Tagging"] = urlencode(dest.tags)
    return args
