"""Turn a stored destination row into what the sender needs (decrypting its secrets)."""

from __future__ import annotations

from dataclasses import dataclass

from s3dest.destinations.rules import ValidatedDestination
from s3dest.destinations.secrets import SecretBox
from s3dest.keys import KeyTemplate
from s3dest.s3.credentials import AssumedRole, session_name
from s3dest.s3.writer import S3Destination
from s3dest.store.destinations import DestinationRow


def secret_aad(destination_id: str, field: str) -> str:
    """Binds a ciphertext to its row and field: copied elsewhere, it does not decrypt."""
    return f"destination:{destination_id}:{field}"


@dataclass(frozen=True)
class DestinationRuntime:
    row: DestinationRow
    s3: S3Destination
    template: KeyTemplate


def decrypt_secrets(row: DestinationRow, box: SecretBox) -> tuple[str | None, str | None]:
    """The row's secret access key and session token (None when it has none), decrypted."""
    secret = (
        box.decrypt(row.secret_access_key_enc, aad=secret_aad(row.id, "secretAccessKey"))
        if row.secret_access_key_enc
        else None
    )
    token = (
        box.decrypt(row.session_token_enc, aad=secret_aad(row.id, "sessionToken"))
        if row.session_token_enc
        else None
    )
    return secret, token


def s3_destination(
    row: DestinationRow, box: SecretBox, *, request_timeout_s: float = 30.0
) -> S3Destination:
    secret, token = decrypt_secrets(row, box)
    role = (
        AssumedRole(
            role_arn=row.role_arn,
            external_id=row.external_id or "",
            session_name=session_name(row.id),
        )
        if row.role_arn
        else None
    )
    return S3Destination(
        bucket=row.bucket,
        region=row.region,
        access_key_id=row.access_key_id or "",
        secret_access_key=secret or "",
        session_token=token,
        endpoint_url=row.endpoint_url,
        storage_class=row.storage_class,
        create_only=row.write_mode == "create-only",
        request_timeout_s=request_timeout_s,
        role=role,
        server_side_encryption=row.server_side_encryption,
        kms_key_id=row.kms_key_id,
        bucket_key_enabled=row.bucket_key_enabled,
        acl=row.acl,
        tags=tuple(sorted((row.tags or {}).items())),
    )


def runtime_for(
    row: DestinationRow, box: SecretBox, *, request_timeout_s: float = 30.0
) -> DestinationRuntime:
    return DestinationRuntime(
        row=row,
        s3=s3_destination(row, box, request_timeout_s=request_timeout_s),
        template=KeyTemplate(row.key_template),
    )


#: What a PutObject depends on (`s3_destination` builds the writer from these): a change to
#: any of them makes a destination's past writes no evidence that the next will succeed, so it
#: is `untested` again until a write or a connection test succeeds. Not the name or `enabled`
#: (they change nothing that is sent), nor the key template: the connection test writes under
#: its own prefix, so no test could prove a template, and a key a bucket policy refuses is
#: found by the first delivery (failing, with the diagnosis). The external ID never changes.
WRITE_SETTINGS: tuple[str, ...] = (
    "bucket",
    "region",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "role_arn",
    "endpoint_url",
    "storage_class",
    "write_mode",
    "server_side_encryption",
    "kms_key_id",
    "bucket_key_enabled",
    "acl",
    "tags",
)


def write_settings_changed(
    row: DestinationRow, box: SecretBox, updated: ValidatedDestination
) -> list[str]:
    """The `WRITE_SETTINGS` in which `updated` (secrets in plain text) differs from the
    stored `row`."""
    secret, token = decrypt_secrets(row, box)
    plain = {"secret_access_key": secret, "session_token": token, "tags": row.tags}
    stored = {name: plain[name] if name in plain else getattr(row, name) for name in WRITE_SETTINGS}
    return [
        name for name in WRITE_SETTINGS if _given(getattr(updated, name)) != _given(stored[name])
    ]


def _given(value: object) -> object:
    # Blank and missing are the same setting (no session token, no tags); False is not.
    return None if value == "" or value == {} else value
