"""The rules of a destination, checked on the complete, merged destination (for a PATCH:
``merge_update(existing, update)``). `validate_destination` collects every field error
into one `InvalidInput` and returns a `ValidatedDestination` with canonical values and
warnings. The shape of a body (field names, JSON types) is the schemas' job
(`s3dest.destinations.schemas`); each rule module holds the rules of one subject:

* `target` — name, bucket, region (where the destination writes)
* `credentials` — access key ID, secret access key, session token
* `access` — roleArn instead of the keys (exactly one of the two)
* `bucket_options` — server-side encryption, canned ACL, tags
* `endpoint` — endpointUrl of an S3-compatible store
* `options` — storage class, write mode, enabled
* `template` — the object key template
* `batch` — batching: many messages in one object (SPEC §9)

No message ever contains a secret access key or a session token, and none echoes an
access key ID (a secret pasted into the wrong field must not end up in a log).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from s3dest.batching import BatchSettings
from s3dest.destinations.rules._text import Bad, present
from s3dest.destinations.rules.access import check_one_way_in, check_role_arn, check_role_region
from s3dest.destinations.rules.batch import check_batch
from s3dest.destinations.rules.bucket_options import (
    check_acl,
    check_bucket_key,
    check_kms_key_id,
    check_sse,
    check_tags,
)
from s3dest.destinations.rules.credentials import (
    check_access_key_id,
    check_credential_pair,
    check_secret,
    check_session_token,
)
from s3dest.destinations.rules.endpoint import EndpointChecker, check_endpoint_url
from s3dest.destinations.rules.options import (
    check_enabled,
    check_storage_class,
    check_write_mode,
)
from s3dest.destinations.rules.target import check_bucket, check_name, check_region
from s3dest.destinations.rules.template import KeyTemplateChecker, check_template
from s3dest.destinations.schemas import WriteMode, invalid_destination, unwrap

__all__ = ["EndpointChecker", "KeyTemplateChecker", "ValidatedDestination", "validate_destination"]


@dataclass(frozen=True, slots=True)
class ValidatedDestination:
    """A destination whose every field passed the rules, in canonical form."""

    name: str
    bucket: str
    region: str
    access_key_id: str | None
    secret_access_key: str | None = field(repr=False)
    session_token: str | None = field(repr=False)
    key_template: str | None
    storage_class: str
    endpoint_url: str | None
    write_mode: WriteMode
    enabled: bool
    role_arn: str | None = None
    server_side_encryption: str | None = None
    kms_key_id: str | None = None
    bucket_key_enabled: bool | None = None
    acl: str | None = None
    tags: dict[str, str] | None = None
    batch: BatchSettings | None = None
    warnings: list[str] = field(default_factory=list)


def validate_destination(
    fields: Mapping[str, Any],
    *,
    check_key_template: KeyTemplateChecker,
    check_endpoint: EndpointChecker,
) -> ValidatedDestination:
    """Check a complete destination (camelCase keys; values str, `SecretStr`, bool or
    None) and return it in canonical form, or raise one `InvalidInput` naming every
    field that is wrong. Keys that are not destination fields (``id``, ``status``…) are
    ignored, so a stored row merged with a PATCH can be passed as it is.

    Missing or null optional fields take their defaults: storageClass STANDARD,
    writeMode overwrite, enabled true; blank sessionToken/keyTemplate/endpointUrl mean
    none (the default key template); no batch means one object per message, and a
    batch's missing or null keys take s3dest.batching's defaults. `check_endpoint` says
    whether an endpoint's host may be contacted (the services pass the process's
    `EgressPolicy.check_endpoint`).
    """
    errors: dict[str, str] = {}
    warnings: list[str] = []

    def run(name: str, check: Any, *args: Any) -> Any:
        try:
            return check(*args)
        except Bad as bad:
            errors[name] = str(bad)
            return None

    def raw(name: str) -> Any:
        return unwrap(fields.get(name))

    # Fields other rules depend on come first.
    endpoint_given = present(raw("endpointUrl"))
    endpoint_url = run(
        "endpointUrl", check_endpoint_url, raw("endpointUrl"), warnings, check_endpoint
    )
    storage_class = run("storageClass", check_storage_class, raw("storageClass"), warnings)
    aws = not endpoint_given

    name = run("name", check_name, raw("name"))
    bucket = run("bucket", check_bucket, raw("bucket"), storage_class, aws)
    region = run("region", check_region, raw("region"), aws)
    role_given = present(raw("roleArn"))
    role_arn = run("roleArn", check_role_arn, raw("roleArn"))
    access_key_id = secret = session_token = None
    if role_arn is not None:
        given = (present(raw(name)) for name in ("accessKeyId", "secretAccessKey", "sessionToken"))
        run("roleArn", check_one_way_in, role_arn, *given)
        if region is not None and "roleArn" not in errors:
            run("roleArn", check_role_region, role_arn, region, aws)
    elif not role_given:
        access_key_id = run("accessKeyId", check_access_key_id, raw("accessKeyId"), aws)
        secret = run("secretAccessKey", check_secret, raw("secretAccessKey"), aws, warnings)
        session_token = run("sessionToken", check_session_token, raw("sessionToken"))
    write_mode = run("writeMode", check_write_mode, raw("writeMode"))
    enabled = run("enabled", check_enabled, fields.get("enabled", True))
    sse = run("serverSideEncryption", check_sse, raw("serverSideEncryption"))
    kms_key_id = run("kmsKeyId", check_kms_key_id, raw("kmsKeyId"), sse, aws)
    bucket_key = run("bucketKeyEnabled", check_bucket_key, raw("bucketKeyEnabled"), sse)
    acl = run("acl", check_acl, raw("acl"))
    tags = run("tags", check_tags, raw("tags"))
    # Files its errors under batch.<key> itself: one batch can have several.
    batch = check_batch(raw("batch"), errors)

    if aws and access_key_id is not None and "sessionToken" not in errors:
        run("sessionToken", check_credential_pair, access_key_id, session_token, warnings)
    if (
        access_key_id is not None
        and secret is not None
        and secret == access_key_id
        and "secretAccessKey" not in errors
    ):
        errors["secretAccessKey"] = (
            "secretAccessKey is the same as accessKeyId; give the secret access key, the "
            "longer value IAM shows once next to the access key ID."
        )

    key_template = run(
        "keyTemplate", check_template, raw("keyTemplate"), check_key_template, warnings
    )

    if errors:
        raise invalid_destination(errors)
    return ValidatedDestination(
        name=name,
        bucket=bucket,
        region=region,
        access_key_id=access_key_id,
        secret_access_key=secret,
        session_token=session_token,
        key_template=key_template,
        storage_class=storage_class,
        endpoint_url=endpoint_url,
        write_mode=write_mode,
        enabled=enabled,
        role_arn=role_arn,
        server_side_encryption=sse,
        kms_key_id=kms_key_id,
        bucket_key_enabled=bucket_key,
        acl=acl,
        tags=tags,
        batch=batch,
        warnings=warnings,
    )
