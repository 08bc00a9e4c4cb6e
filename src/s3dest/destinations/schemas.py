"""The destination's schemas: what the REST API, the CLI and the dashboard take and show.

* `DestinationCreate` / `DestinationUpdate` — the *shape* of a request body (field names,
  JSON types, no unknown fields). Their field names are the REST contract (camelCase).
  Secrets are `SecretStr`, so ``repr()`` never shows them. A body is parsed once, at the
  edge: by FastAPI for the API, by `parse_create` / `parse_update` for the CLI and the
  dashboard; the services take the parsed model. The *rules* are checked afterwards, on
  the complete destination, by `s3dest.destinations.rules`.
* `DestinationPublic` — a destination as it may be shown (`from_row`): never the secret
  or the session token, the access key ID masked.
* `invalid_input_from_errors` — pydantic's errors for a destination body as one
  `InvalidInput` whose messages read like the rules' (through the app's one translator,
  `s3dest.validation_errors`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.alias_generators import to_snake

from s3dest.destinations.access_view import ACCESS_VIEW_FIELDS, access_view
from s3dest.destinations.batch_fields import BatchBody, BatchPublic, batch_shape_message
from s3dest.errors import InvalidInput
from s3dest.s3.masking import mask_access_key_id
from s3dest.store.destinations import DestinationRow
from s3dest.validation_errors import field_messages

__all__ = [
    "DEFAULT_WRITE_MODE",
    "DESTINATION_FIELDS",
    "REQUIRED_HINTS",
    "SECRET_FIELDS",
    "WRITE_MODES",
    "WRITE_MODE_HINT",
    "DestinationCreate",
    "DestinationPublic",
    "DestinationUpdate",
    "WriteMode",
    "invalid_destination",
    "invalid_input_from_errors",
    "merge_update",
    "parse_create",
    "parse_update",
    "unwrap",
]


WriteMode = Literal["overwrite", "create-only"]
WRITE_MODES: tuple[WriteMode, ...] = get_args(WriteMode)
DEFAULT_WRITE_MODE: WriteMode = "overwrite"

#: Every field of a destination as the REST API names it, in display order.
DESTINATION_FIELDS: tuple[str, ...] = (
    "name",
    "bucket",
    "region",
    "accessKeyId",
    "secretAccessKey",
    "sessionToken",
    "keyTemplate",
    "storageClass",
    "endpointUrl",
    "writeMode",
    "enabled",
    "roleArn",
    "serverSideEncryption",
    "kmsKeyId",
    "bucketKeyEnabled",
    "acl",
    "tags",
    "batch",
)
#: The fields stored encrypted and never shown.
SECRET_FIELDS: tuple[str, ...] = ("secretAccessKey", "sessionToken")
#: Fields a PATCH may not set to null (null clears sessionToken, keyTemplate and
#: endpointUrl, turns batching off, and resets storageClass and writeMode to their defaults).
#: accessKeyId and secretAccessKey may be null: a destination switching to roleArn clears them.
_NOT_NULLABLE = ("name", "bucket", "region", "enabled")

REQUIRED_HINTS: dict[str, str] = {
    "name": (
        "name is required: give the destination an alias such as 'ampersandS3Bucket'; "
        "amp.yaml refers to the destination by this name."
    ),
    "bucket": (
        "bucket is required: give the name of your S3 bucket, e.g. 'ampersand-integration-bucket'."
    ),
    "region": (
        "region is required: give the AWS region the bucket is in, e.g. 'us-west-2' "
        "(the S3 console shows it in the bucket list)."
    ),
    "accessKeyId": (
        "accessKeyId is required (or give roleArn instead of keys): give the access key ID "
        "of an IAM user or role that is allowed s3:PutObject on the bucket (it starts with "
        "AKIA, or ASIA for temporary credentials)."
    ),
    "secretAccessKey": (
        "secretAccessKey is required: give the secret access key that belongs to the "
        "access key ID (IAM shows it once, when the key is created)."
    ),
}


WRITE_MODE_HINT = (
    "writeMode must be 'overwrite' (a later object with the same key replaces the "
    "earlier one) or 'create-only' (an existing key is never replaced)."
)

# --------------------------------------------------------------------------- models


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class DestinationCreate(_Body):
    """Body of ``POST /v1/destinations``. Only shapes are checked here; the rules are
    checked by `validate_destination` (``validate_destination(body.to_fields(), ...)``)."""

    # The contract (SPEC §5, §8): the access keys, or roleArn instead of them.
    model_config = ConfigDict(
        extra="forbid",
        hide_input_in_errors=True,
        json_schema_extra={
            "oneOf": [
                {"required": ["accessKeyId", "secretAccessKey"]},
                {"required": ["roleArn"]},
            ]
        },
    )

    name: str
    bucket: str
    region: str
    # Exactly one of the keys or roleArn (the rules check it on the whole destination).
    accessKeyId: str | None = None
    secretAccessKey: SecretStr | None = None
    sessionToken: SecretStr | None = None
    keyTemplate: str | None = None
    storageClass: str | None = None
    endpointUrl: str | None = None
    writeMode: WriteMode = DEFAULT_WRITE_MODE
    enabled: bool = True
    roleArn: str | None = None
    serverSideEncryption: str | None = None
    kmsKeyId: str | None = None
    bucketKeyEnabled: bool | None = None
    acl: str | None = None
    tags: dict[str, str] | None = None
    batch: BatchBody | None = Field(
        default=None,
        description="batching: many messages in one JSON Lines object; every key "
        "optional, {} takes the defaults; absent or null: one object per message",
    )

    def to_fields(self) -> dict[str, Any]:
        """Every field, camelCase, secrets unwrapped to plain strings."""
        return {name: unwrap(getattr(self, name)) for name in DESTINATION_FIELDS}


class DestinationUpdate(_Body):
    """Body of ``PATCH /v1/destinations/{id}``.

    A field left out keeps its current value; ``null`` clears sessionToken, keyTemplate
    and endpointUrl, turns batching off (``batch``) and resets storageClass (→ STANDARD)
    and writeMode (→ overwrite). The other fields cannot be null. Which fields were given
    is `model_fields_set`. ``batch`` is merged key by key, as RFC 7396 merges a patch: a
    key left out keeps its current value, a null key takes its default.
    """

    name: str | None = None
    bucket: str | None = None
    region: str | None = None
    accessKeyId: str | None = None
    secretAccessKey: SecretStr | None = None
    sessionToken: SecretStr | None = None
    keyTemplate: str | None = None
    storageClass: str | None = None
    endpointUrl: str | None = None
    writeMode: WriteMode | None = None
    enabled: bool | None = None
    roleArn: str | None = None
    serverSideEncryption: str | None = None
    kmsKeyId: str | None = None
    bucketKeyEnabled: bool | None = None
    acl: str | None = None
    tags: dict[str, str] | None = None
    batch: BatchBody | None = Field(
        default=None,
        description="batching settings to change, key by key (a key left out keeps its "
        "value; a null key takes its default); null turns batching off",
    )

    @field_validator(*_NOT_NULLABLE)
    @classmethod
    def _not_null(cls, value: object, info: ValidationInfo) -> object:
        # Runs only for fields that were given: a null here is an explicit null.
        if value is None:
            raise ValueError(
                f"{info.field_name} cannot be null; leave it out of the update to keep "
                "the current value"
            )
        return value

    def changes(self) -> dict[str, Any]:
        """The fields that were given (null included), secrets unwrapped."""
        return {
            name: unwrap(getattr(self, name))
            for name in DESTINATION_FIELDS
            if name in self.model_fields_set
        }


def merge_update(existing: Mapping[str, Any], update: DestinationUpdate) -> dict[str, Any]:
    """The destination as it would be after ``update``, ready for `validate_destination`.

    ``existing`` holds the current camelCase fields, secrets decrypted.
    """
    merged = dict(existing)
    changes = update.changes()
    batch = changes.get("batch")
    if batch is not None:
        # Key by key: `--batch-max-seconds 5` does not reset the compression chosen before.
        # A null key is dropped, so that the rules give it its default.
        current = existing.get("batch") or {}
        changes["batch"] = {
            key: value for key, value in {**current, **batch}.items() if value is not None
        }
    merged.update(changes)
    return merged


def parse_create(body: Any) -> DestinationCreate:
    """Parse a create body (e.g. from the CLI), raising `InvalidInput` on a bad shape."""
    try:
        return DestinationCreate.model_validate(body)
    except ValidationError as exc:
        raise invalid_input_from_errors(exc.errors()) from None


def parse_update(body: Any) -> DestinationUpdate:
    """Parse an update body, raising `InvalidInput` on a bad shape."""
    try:
        return DestinationUpdate.model_validate(body)
    except ValidationError as exc:
        raise invalid_input_from_errors(exc.errors()) from None


def invalid_input_from_errors(errors: Iterable[Mapping[str, Any]]) -> InvalidInput:
    """Translate pydantic errors (``ValidationError.errors()``, or FastAPI's
    ``RequestValidationError.errors()`` whose locations start with "body") for a
    destination body into one `InvalidInput`. Input values are never repeated."""
    fields = field_messages(errors, _pydantic_message, root="body", indexed=False, request=True)
    return invalid_destination(fields)


def _pydantic_message(name: str, error: Mapping[str, Any]) -> str:
    kind = str(error.get("type", ""))
    if kind == "json_invalid":
        return "the body is not valid JSON; send a JSON object (Content-Type: application/json)."
    if name == "body":
        return (
            "the body must be a JSON object with the destination's fields: "
            f"{', '.join(DESTINATION_FIELDS)}."
        )
    if name == "batch" or name.startswith("batch."):
        return batch_shape_message(name, kind)
    if kind == "extra_forbidden" and name == "externalId":
        return (
            "externalId is chosen by s3dest, one per destination, and cannot be set; remove "
            "it. The response shows it, for the role's trust policy."
        )
    if kind == "extra_forbidden":
        return (
            f"{name!r} is not a field of a destination; remove it. "
            f"The fields are: {', '.join(DESTINATION_FIELDS)}."
        )
    if kind == "missing":
        return REQUIRED_HINTS.get(name, f"{name} is required.")
    if kind == "string_type":
        return f"{name} must be a string."
    if kind in ("bool_type", "bool_parsing"):
        return f"{name} must be true or false."
    if name == "tags" or name.startswith("tags."):
        return (
            "tags must be an object of tag keys to string values, e.g. "
            '{"team": "data", "source": "s3dest"}.'
        )
    if kind == "literal_error" and name == "writeMode":
        return WRITE_MODE_HINT
    if kind == "value_error":
        message = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
        return message if message.endswith(".") else message + "."
    return f"{name}: {error.get('msg', 'is invalid')}."


def unwrap(value: Any) -> Any:
    """A `SecretStr`'s plain value, a `BatchBody` as the keys it was given (explicit nulls
    included: an update's null key resets that key); any other value as it is."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, BatchBody):
        return value.model_dump(exclude_unset=True)
    return value


def invalid_destination(errors: Mapping[str, str]) -> InvalidInput:
    """One `InvalidInput` for a destination's field errors, in the order of its fields."""
    ordered = sorted(errors.items(), key=lambda item: (_field_order(item[0]), item[0]))
    fields = dict(ordered)
    names = ", ".join(fields)
    if len(fields) == 1:
        (only,) = fields.values()
        message = f"invalid destination: {only}"
    else:
        message = f"invalid destination: {len(fields)} fields need fixing ({names})"
    return InvalidInput(message, fields)


def _field_order(path: str) -> int:
    # batch.maxMessages sorts where batch does.
    top = path.split(".", 1)[0]
    return DESTINATION_FIELDS.index(top) if top in DESTINATION_FIELDS else 99


# ----------------------------------------------------------------------- output


class DestinationPublic(BaseModel):
    """A destination as the API shows it: never the secret or the session token."""

    id: str
    name: str
    bucket: str
    region: str
    accessKeyId: str | None = Field(description="masked, e.g. AKIA…WXYZ; null with roleArn")
    hasSessionToken: bool
    keyTemplate: str | None = Field(description="JMESPath; null means the default key")
    storageClass: str
    endpointUrl: str | None
    writeMode: Literal["overwrite", "create-only"]
    enabled: bool
    status: Literal["untested", "healthy", "failing", "disabled"]
    diagnosis: str | None = Field(description="why the destination is failing, if it is")
    failingSince: float | None = Field(description="Unix seconds")
    verifiedAt: float | None = Field(
        description="Unix seconds: when a write with the current write settings first "
        "succeeded (a passing connection test or a delivery); null while untested, and "
        "again after an update of the keys, bucket, region or another write setting"
    )
    warnings: list[str] = Field(
        description="advice about the configuration just saved (only on create and update)"
    )
    createdAt: float = Field(description="Unix seconds")
    updatedAt: float = Field(description="Unix seconds")
    # SPEC §8
    roleArn: str | None = Field(description="the role s3dest assumes instead of keys")
    externalId: str | None = Field(
        description="role destinations: the sts:ExternalId s3dest sends (set by s3dest)"
    )
    serverSideEncryption: str | None = Field(description="AES256 or aws:kms")
    kmsKeyId: str | None
    bucketKeyEnabled: bool | None
    acl: str | None = Field(description="canned ACL sent with every object")
    tags: dict[str, str] | None = Field(description="tags sent with every object")
    batch: BatchPublic | None = Field(
        description="batching: many messages in one JSON Lines object; null: one object per message"
    )
    requiredActions: list[str] = Field(
        description="exactly the IAM actions this configuration needs to write"
    )
    iamPolicy: dict[str, Any] = Field(
        description="the permissions policy for the IAM user or role that writes"
    )
    trustPolicy: dict[str, Any] | None = Field(
        description="role destinations: the role's trust policy, naming s3dest's principal"
    )
    s3destPrincipal: str | None = Field(
        description="role destinations: s3dest's own AWS principal; null when it has none"
    )
    s3destIdentityNote: str | None = Field(
        description="role destinations: why s3dest's principal is unknown, when it is"
    )

    @classmethod
    def from_row(cls, row: DestinationRow, warnings: Sequence[str] = ()) -> DestinationPublic:
        """The row's public view; ``warnings`` are the rules' advice on a save."""
        values = {name: getattr(row, column) for name, column in _ROW_COLUMNS.items()}
        return cls(
            **values,
            **access_view(row),
            accessKeyId=mask_access_key_id(row.access_key_id) if row.access_key_id else None,
            tags=row.tags,
            batch=BatchPublic.of(row.batch),
            warnings=list(warnings),
        )


#: Public field -> the row attribute it shows as it is (the snake_case of its name).
_ROW_COLUMNS = {
    name: to_snake(name)
    for name in DestinationPublic.model_fields
    if name not in ("accessKeyId", "warnings", "tags", "batch", *ACCESS_VIEW_FIELDS)
}
