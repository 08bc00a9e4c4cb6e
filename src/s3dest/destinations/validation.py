"""Validation of S3 destinations, shared by the REST API, the dashboard and the CLI.

Two layers:

* `DestinationCreate` / `DestinationUpdate` — pydantic models for the *shape* of a
  request body (field names, JSON types, no unknown fields). Their field names are the
  REST contract (camelCase). Secrets are `SecretStr`, so ``repr()`` never shows them.
  `invalid_input_from_errors` turns pydantic's errors into an `InvalidInput` whose
  messages read like the rest of s3dest's.
* `validate_destination` — the *rules*, checked on the complete, merged destination
  (for a PATCH: ``merge_update(existing, update)``). It collects every field error into
  one `InvalidInput` and returns a `ValidatedDestination` with canonical values and
  warnings.

No message ever contains a secret access key or a session token, and none echoes an
access key ID (a secret pasted into the wrong field must not end up in a log).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, get_args
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from s3dest.destinations.masking import mask_access_key_id
from s3dest.errors import InvalidInput
from s3dest.storage_class import canonical_storage_class

__all__ = [
    "DEFAULT_WRITE_MODE",
    "DESTINATION_FIELDS",
    "WRITE_MODES",
    "DestinationCreate",
    "DestinationUpdate",
    "KeyTemplateChecker",
    "ValidatedDestination",
    "WriteMode",
    "invalid_input_from_errors",
    "mask_access_key_id",
    "merge_update",
    "parse_create",
    "parse_update",
    "validate_destination",
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
)
#: Fields a PATCH may not set to null (null clears sessionToken, keyTemplate and
#: endpointUrl, and resets storageClass and writeMode to their defaults).
_NOT_NULLABLE = ("name", "bucket", "region", "accessKeyId", "secretAccessKey", "enabled")

_REQUIRED_HINTS: dict[str, str] = {
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
        "accessKeyId is required: give the access key ID of an IAM user or role that is "
        "allowed s3:PutObject on the bucket (it starts with AKIA, or ASIA for temporary "
        "credentials)."
    ),
    "secretAccessKey": (
        "secretAccessKey is required: give the secret access key that belongs to the "
        "access key ID (IAM shows it once, when the key is created)."
    ),
}


# --------------------------------------------------------------------------- models


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class DestinationCreate(_Body):
    """Body of ``POST /v1/destinations``. Only shapes are checked here; the rules are
    checked by `validate_destination` (``validate_destination(body.to_fields(), ...)``)."""

    name: str
    bucket: str
    region: str
    accessKeyId: str
    secretAccessKey: SecretStr
    sessionToken: SecretStr | None = None
    keyTemplate: str | None = None
    storageClass: str | None = None
    endpointUrl: str | None = None
    writeMode: WriteMode = DEFAULT_WRITE_MODE
    enabled: bool = True

    def to_fields(self) -> dict[str, Any]:
        """Every field, camelCase, secrets unwrapped to plain strings."""
        return {name: _unwrap(getattr(self, name)) for name in DESTINATION_FIELDS}


class DestinationUpdate(_Body):
    """Body of ``PATCH /v1/destinations/{id}``.

    A field left out keeps its current value; ``null`` clears sessionToken, keyTemplate
    and endpointUrl and resets storageClass (→ STANDARD) and writeMode (→ overwrite).
    The other fields cannot be null. Which fields were given is `model_fields_set`.
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
            name: _unwrap(getattr(self, name))
            for name in DESTINATION_FIELDS
            if name in self.model_fields_set
        }


def merge_update(existing: Mapping[str, Any], update: DestinationUpdate) -> dict[str, Any]:
    """The destination as it would be after ``update``, ready for `validate_destination`.

    ``existing`` holds the current camelCase fields, secrets decrypted.
    """
    merged = dict(existing)
    merged.update(update.changes())
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
    fields: dict[str, str] = {}
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        if loc and loc[0] == "body":
            loc = loc[1:]
        if error.get("type") == "json_invalid":
            loc = []  # its location is a character offset, not a field
        name = ".".join(loc) if loc else "body"
        message = _pydantic_message(name, str(error.get("type", "")), error)
        fields[name] = f"{fields[name]} {message}" if name in fields else message
    return _invalid(fields)


def _pydantic_message(name: str, kind: str, error: Mapping[str, Any]) -> str:
    if kind == "json_invalid":
        return "the body is not valid JSON; send a JSON object (Content-Type: application/json)."
    if name == "body":
        return (
            "the body must be a JSON object with the destination's fields: "
            f"{', '.join(DESTINATION_FIELDS)}."
        )
    if kind == "extra_forbidden":
        return (
            f"{name!r} is not a field of a destination; remove it. "
            f"The fields are: {', '.join(DESTINATION_FIELDS)}."
        )
    if kind == "missing":
        return _REQUIRED_HINTS.get(name, f"{name} is required.")
    if kind == "string_type":
        return f"{name} must be a string."
    if kind in ("bool_type", "bool_parsing"):
        return f"{name} must be true or false."
    if kind == "literal_error" and name == "writeMode":
        return _WRITE_MODE_HINT
    if kind == "value_error":
        message = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
        return message if message.endswith(".") else message + "."
    return f"{name}: {error.get('msg', 'is invalid')}."


# ---------------------------------------------------------------------- validation


class KeyTemplateChecker(Protocol):
    """Checks an object key template: returns warnings, or raises `KeyTemplateInvalid`
    (any `InvalidInput`) when the template cannot be used. The real one is in
    `s3dest.keys`."""

    def __call__(self, template: str, /) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class ValidatedDestination:
    """A destination whose every field passed the rules, in canonical form."""

    name: str
    bucket: str
    region: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(repr=False)
    key_template: str | None
    storage_class: str
    endpoint_url: str | None
    write_mode: WriteMode
    enabled: bool
    warnings: list[str] = field(default_factory=list)

    @property
    def masked_access_key_id(self) -> str:
        return mask_access_key_id(self.access_key_id)

    def public_fields(self) -> dict[str, Any]:
        """The camelCase fields that may be shown: no secrets, the key ID masked."""
        return {
            "name": self.name,
            "bucket": self.bucket,
            "region": self.region,
            "accessKeyId": self.masked_access_key_id,
            "keyTemplate": self.key_template,
            "storageClass": self.storage_class,
            "endpointUrl": self.endpoint_url,
            "writeMode": self.write_mode,
            "enabled": self.enabled,
        }


class _Bad(Exception):
    """One field's problem, as the sentence to show."""


def validate_destination(
    fields: Mapping[str, Any], *, check_key_template: KeyTemplateChecker
) -> ValidatedDestination:
    """Check a complete destination (camelCase keys; values str, `SecretStr`, bool or
    None) and return it in canonical form, or raise one `InvalidInput` naming every
    field that is wrong. Keys that are not destination fields (``id``, ``status``…) are
    ignored, so a stored row merged with a PATCH can be passed as it is.

    Missing or null optional fields take their defaults: storageClass STANDARD,
    writeMode overwrite, enabled true; blank sessionToken/keyTemplate/endpointUrl mean
    none (the default key template).
    """
    errors: dict[str, str] = {}
    warnings: list[str] = []

    def run(name: str, check: Any, *args: Any) -> Any:
        try:
            return check(*args)
        except _Bad as bad:
            errors[name] = str(bad)
            return None

    def raw(name: str) -> Any:
        return _unwrap(fields.get(name))

    # Fields other rules depend on come first.
    endpoint_given = _present(raw("endpointUrl"))
    endpoint_url = run("endpointUrl", _check_endpoint_url, raw("endpointUrl"), warnings)
    storage_class = run("storageClass", _check_storage_class, raw("storageClass"), warnings)
    aws = not endpoint_given

    name = run("name", _check_name, raw("name"))
    bucket = run("bucket", _check_bucket, raw("bucket"), storage_class, aws)
    region = run("region", _check_region, raw("region"), aws)
    access_key_id = run("accessKeyId", _check_access_key_id, raw("accessKeyId"), aws)
    secret = run("secretAccessKey", _check_secret, raw("secretAccessKey"), aws, warnings)
    session_token = run("sessionToken", _check_session_token, raw("sessionToken"))
    write_mode = run("writeMode", _check_write_mode, raw("writeMode"))
    enabled = run("enabled", _check_enabled, fields.get("enabled", True))

    if aws and access_key_id is not None and "sessionToken" not in errors:
        run("sessionToken", _check_credential_pair, access_key_id, session_token, warnings)
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
        "keyTemplate", _check_key_template, raw("keyTemplate"), check_key_template, warnings
    )

    if errors:
        raise _invalid(errors)
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
        warnings=warnings,
    )


# ---------------------------------------------------------------- field rules

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")

_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz")
_UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_DIGITS = frozenset("0123456789")
_BUCKET_CHARS = _LOWER | _DIGITS | frozenset(".-")
_IP_RE = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES: dict[str, str] = {
    "-s3alias": "an access point alias",
    "--ol-s3": "an Object Lambda access point alias",
    ".mrap": "a Multi-Region Access Point",
    "--table-s3": "an S3 table bucket",
}
_DIRECTORY_SUFFIX = "--x-s3"
_DIRECTORY_RE = re.compile(r"(?P<base>[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)--(?P<zone>[a-z0-9-]+)--x-s3")
_ZONE_ID_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*-az[0-9]+")

_DIRECTIONS = "central|north|south|east|west|northeast|northwest|southeast|southwest"
_AWS_REGION_RE = re.compile(rf"[a-z]{{2,4}}(?:-[a-z]{{2,4}})?-(?:{_DIRECTIONS})-[0-9]{{1,2}}")
_CUSTOM_REGION_RE = re.compile(r"[a-z0-9-]{1,64}")

_AWS_KEY_ID_CHARS = _UPPER | _DIGITS
_CUSTOM_KEY_ID_RE = re.compile(r"[A-Za-z0-9._-]{3,128}")
_CUSTOM_KEY_ID_CHARS = _UPPER | _LOWER | _DIGITS | frozenset("._-")
_KEY_ID_PREFIXES = ("AKIA", "ASIA")
#: Prefixes of IAM unique IDs that are not access key IDs, and what they are.
_NOT_KEY_ID_PREFIXES: dict[str, str] = {
    "AIDA": "an IAM user's unique ID",
    "AROA": "an IAM role's unique ID",
    "AGPA": "an IAM group's unique ID",
    "AIPA": "an EC2 instance profile's unique ID",
    "ANPA": "a managed policy's unique ID",
    "ANVA": "a managed policy version's unique ID",
    "APKA": "a CloudFront public key ID",
    "ASCA": "a certificate ID",
}
_AWS_SECRET_CHARS = _UPPER | _LOWER | _DIGITS | frozenset("/+")
_SECRET_MAX = 1024
_SESSION_TOKEN_MAX = 16384

_WRITE_MODE_HINT = (
    "writeMode must be 'overwrite' (a later object with the same key replaces the "
    "earlier one) or 'create-only' (an existing key is never replaced)."
)


def _check_name(value: Any) -> str:
    text = _required_text("name", value)
    if len(text) > 64:
        raise _Bad(
            f"name must be at most 64 characters; this one has {len(text)}. Choose a shorter alias."
        )
    if _NAME_RE.fullmatch(text):
        return text
    problems: list[str] = []
    if text[0] not in _NAME_CHARS - frozenset("._-"):
        problems.append(f"starts with {_char(text[0])}")
    bad = sorted({c for c in text if c not in _NAME_CHARS})
    if bad:
        problems.append(f"has {_chars(bad)}")
    raise _Bad(
        "name must start with a letter or digit and contain only letters, digits, "
        f"'.', '_' and '-', so amp.yaml can refer to it; {text!r} {_and(problems)}. "
        "Choose an alias such as 'ampersandS3Bucket'."
    )


def _check_bucket(value: Any, storage_class: str | None, aws: bool) -> str:
    text = _required_text("bucket", value)
    hint = _bucket_paste_hint(text)
    if hint:
        raise _Bad(hint)

    problems: list[str] = []
    if not 3 <= len(text) <= 63:
        problems.append(f"is {len(text)} character{'s' if len(text) != 1 else ''} long")
    has: list[str] = []
    if any(c in _UPPER for c in text):
        has.append("upper-case letters")
    bad = sorted({c for c in text if c not in _BUCKET_CHARS and c not in _UPPER})
    has.extend(_char(c) for c in bad)
    if ".." in text:
        has.append("two dots in a row")
    if has:
        problems.append(f"has {_and(has)}")
    if text[0] in ".-":
        problems.append(f"starts with {_char(text[0])} (it must start with a letter or digit)")
    if text[-1] in ".-":
        problems.append(f"ends with {_char(text[-1])} (it must end with a letter or digit)")
    if _IP_RE.fullmatch(text):
        problems.append("is formatted like an IP address")
    if problems:
        raise _Bad(
            "bucket names must be 3–63 characters of lower-case letters, digits, dots and "
            f"hyphens; {text!r} {_and(problems)}. Use the bucket's exact name as shown "
            "in the S3 console."
        )
    if not aws:
        return text

    for prefix in _RESERVED_PREFIXES:
        if text.startswith(prefix):
            raise _Bad(
                f"bucket names cannot start with {prefix!r}, a prefix S3 reserves, so "
                f"{text!r} is not a bucket name. Use the bucket's exact name as shown in "
                "the S3 console."
            )
    for suffix, what in _RESERVED_SUFFIXES.items():
        if text.endswith(suffix):
            raise _Bad(
                f"{text!r} ends with {suffix!r}, so it names {what}, not a general-purpose "
                "bucket; s3dest writes to the bucket itself. Use the bucket's exact name "
                "as shown in the S3 console."
            )

    is_directory = text.endswith(_DIRECTORY_SUFFIX)
    if storage_class is None:  # the storage class is wrong; say nothing about the pairing
        return text
    if storage_class == "EXPRESS_ONEZONE":
        example = "'my-bucket--usw2-az1--x-s3'"
        if not is_directory:
            raise _Bad(
                "storage class EXPRESS_ONEZONE writes to an S3 Express One Zone directory "
                f"bucket, whose name ends in '--<zone-id>--x-s3' (e.g. {example}); "
                f"{text!r} is a general-purpose bucket name. Use the directory bucket's "
                "full name, or choose another storageClass such as STANDARD."
            )
        match = _DIRECTORY_RE.fullmatch(text)
        if "." in text or match is None or not _ZONE_ID_RE.fullmatch(match["zone"]):
            raise _Bad(
                "directory bucket names have the form 'base-name--<zone-id>--x-s3' "
                f"(e.g. {example}), with no dots; {text!r} does not. Use the directory "
                "bucket's full name as shown in the S3 console."
            )
    elif is_directory:
        raise _Bad(
            f"{text!r} ends with '--x-s3', so it is an S3 Express One Zone directory "
            f"bucket, which accepts only the EXPRESS_ONEZONE storage class, not "
            f"{storage_class}. Set storageClass to EXPRESS_ONEZONE, or use a "
            "general-purpose bucket."
        )
    return text


def _bucket_paste_hint(text: str) -> str | None:
    """A message for a bucket given as a URI, ARN or host name instead of its name."""
    candidate: str | None = None
    if text.lower().startswith("s3://"):
        candidate = text[5:].split("/", 1)[0]
        what = "an S3 URI"
    elif text.startswith("arn:"):
        candidate = text.rsplit(":", 1)[-1].split("/", 1)[0]
        what = "an ARN"
    elif text.lower().startswith(("http://", "https://")):
        host = urlsplit(text).hostname or ""
        candidate = host.split(".s3", 1)[0] if ".s3" in host else None
        what = "a URL"
    elif "/" in text:
        candidate = text.split("/", 1)[0]
        what = "a path"
    elif text.lower().endswith(".amazonaws.com") and ".s3" in text.lower():
        candidate = text.lower().split(".s3", 1)[0]
        what = "an S3 host name"
    else:
        return None
    fix = f"give only the bucket name, {candidate!r}" if candidate else "give only its name"
    return f"bucket must be the bucket's name, but {text!r} is {what}; {fix}."


def _check_region(value: Any, aws: bool) -> str:
    text = _required_text("region", value)
    if not aws:
        if _CUSTOM_REGION_RE.fullmatch(text):
            return text
        raise _Bad(
            "region must be 1–64 lower-case letters, digits and hyphens; with an "
            f"endpointUrl, use the region your storage service expects (often 'auto' or "
            f"'us-east-1'). {text!r} is not valid."
        )
    canonical = text.lower()
    if _AWS_REGION_RE.fullmatch(canonical):
        return canonical
    if canonical[-1:].isalpha() and _AWS_REGION_RE.fullmatch(canonical[:-1]):
        raise _Bad(
            f"region must be an AWS region, not an availability zone; {text!r} is a zone "
            f"of the region {canonical[:-1]!r}. Use {canonical[:-1]!r}."
        )
    raise _Bad(
        "region must be an AWS region code such as 'us-west-2' or 'eu-central-1'; "
        f"{text!r} is not one. Use the region shown for the bucket in the S3 console "
        "(for an S3-compatible store, also set endpointUrl)."
    )


def _check_access_key_id(value: Any, aws: bool) -> str:
    text = _required_text("accessKeyId", value)
    if any(c.isspace() for c in text):
        raise _Bad(
            "accessKeyId contains whitespace; copy the access key ID again, without "
            "spaces or line breaks."
        )
    if not aws:
        if _CUSTOM_KEY_ID_RE.fullmatch(text):
            return text
        raise _Bad(
            "accessKeyId must be 3–128 letters, digits, '.', '_' or '-'; the value given "
            f"has {len(text)} characters{_describe_bad(text, _CUSTOM_KEY_ID_CHARS)}. Copy "
            "the access key from your storage service's console."
        )
    prefix = text[:4].upper()
    if prefix in _NOT_KEY_ID_PREFIXES:
        raise _Bad(
            f"accessKeyId starts with {prefix!r}, the prefix of {_NOT_KEY_ID_PREFIXES[prefix]}"
            ", not of an access key ID. Create an access key (IAM console → user → "
            "Security credentials) and use its ID, which starts with AKIA."
        )
    problems: list[str] = []
    if not 16 <= len(text) <= 128:
        problems.append(f"has {len(text)} characters")
    if any(c in _LOWER for c in text):
        problems.append("has lower-case letters")
    bad = sorted({c for c in text if c not in _AWS_KEY_ID_CHARS and c not in _LOWER})
    if bad:
        problems.append(f"has {_chars(bad)}")
    if not problems:
        return text
    looks_secret = len(text) == 40 and any(c in _LOWER for c in text)
    hint = (
        " It looks like a secret access key: accessKeyId is the shorter ID next to it."
        if looks_secret
        else " Copy it from the IAM console or the access key's .csv file."
    )
    raise _Bad(
        "accessKeyId must be an AWS access key ID: 16–128 upper-case letters and digits, "
        f"usually 20 starting with AKIA or ASIA; the value given {_and(problems)}.{hint}"
    )


def _check_credential_pair(
    access_key_id: str, session_token: str | None, warnings: list[str]
) -> None:
    """AWS only: a temporary key needs its session token; a long-term key does not."""
    prefix = access_key_id[:4]
    if prefix == "ASIA" and session_token is None:
        raise _Bad(
            "sessionToken is required with temporary credentials (an accessKeyId starting "
            "with ASIA); give the session token issued with them, or use a long-term "
            "access key (AKIA…)."
        )
    if prefix == "AKIA" and session_token is not None:
        warnings.append(
            "sessionToken is set, but accessKeyId starts with AKIA (a long-term key), "
            "which does not use one; S3 rejects writes that send a session token with a "
            "long-term key. Clear sessionToken unless the credentials are temporary."
        )
    elif prefix not in _KEY_ID_PREFIXES:
        warnings.append(
            f"accessKeyId starts with {prefix!r}; AWS access key IDs start with AKIA "
            "(long-term) or ASIA (temporary). If the bucket is not on AWS, set endpointUrl."
        )


def _check_secret(value: Any, aws: bool, warnings: list[str]) -> str:
    if isinstance(value, str) and not value.strip():
        value = None
    text = _required_text("secretAccessKey", value)
    if any(c.isspace() for c in text):
        raise _Bad(
            "secretAccessKey contains whitespace; copy the secret access key again, "
            "without spaces or line breaks."
        )
    minimum = 16 if aws else 8
    if len(text) < minimum:
        aws_note = " (AWS secret access keys have 40)" if aws else ""
        raise _Bad(
            f"secretAccessKey must be at least {minimum} characters{aws_note}; the value "
            f"given has {len(text)}. Copy the whole secret access key."
        )
    if len(text) > _SECRET_MAX:
        raise _Bad(
            f"secretAccessKey must be at most {_SECRET_MAX} characters; the value given "
            f"has {len(text)}. Give only the secret access key."
        )
    if aws and len(text) != 40:
        warnings.append(
            f"secretAccessKey has {len(text)} characters, but AWS secret access keys have "
            "40; check that it was copied whole."
        )
    elif aws and any(c not in _AWS_SECRET_CHARS for c in text):
        warnings.append(
            "secretAccessKey has characters AWS secret access keys do not contain (they "
            "are letters, digits, '/' and '+'); check that it was copied correctly."
        )
    return text


def _check_session_token(value: Any) -> str | None:
    text = _optional_text("sessionToken", value)
    if text is None:
        return None
    if any(c.isspace() for c in text):
        raise _Bad(
            "sessionToken contains whitespace; copy the session token again, without "
            "spaces or line breaks."
        )
    if len(text) > _SESSION_TOKEN_MAX:
        raise _Bad(
            f"sessionToken must be at most {_SESSION_TOKEN_MAX} characters; the value "
            f"given has {len(text)}. Give only the session token."
        )
    return text


def _check_storage_class(value: Any, warnings: list[str]) -> str:
    if value is not None and not isinstance(value, str):
        raise _Bad(f"storageClass must be a string such as 'STANDARD', not {_type(value)}.")
    try:
        canonical = canonical_storage_class(value, field="storageClass")
    except InvalidInput as exc:
        raise _Bad(_sentence(exc.fields.get("storageClass", exc.message))) from None
    if canonical == "REDUCED_REDUNDANCY":
        warnings.append(
            "storageClass REDUCED_REDUNDANCY is not recommended by AWS: STANDARD is more "
            "durable and usually costs less."
        )
    return canonical


def _check_endpoint_url(value: Any, warnings: list[str]) -> str | None:
    text = _optional_text("endpointUrl", value)
    if text is None:
        return None
    example = "e.g. 'https://minio.example.com:9000'"
    if any(c.isspace() for c in text):
        raise _Bad(f"endpointUrl must not contain spaces; give a URL {example}.")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not text.lower().startswith(scheme + "://"):
        raise _Bad(f"endpointUrl must start with http:// or https://, {example}.")
    if "@" in parts.netloc:
        raise _Bad(
            "endpointUrl must not contain credentials; remove the 'user:password@' part "
            "and give them as accessKeyId and secretAccessKey."
        )
    host = parts.hostname
    if not host or not re.fullmatch(r"[A-Za-z0-9._\-]+|[0-9A-Fa-f:.]+", host):
        raise _Bad(f"endpointUrl must name a host, {example}.")
    try:
        port = parts.port
    except ValueError:
        raise _Bad(f"endpointUrl has an invalid port; ports are 1–65535, {example}.") from None
    if port == 0:
        raise _Bad(f"endpointUrl has an invalid port; ports are 1–65535, {example}.")
    if parts.query or parts.fragment or text.endswith(("?", "#")):
        raise _Bad(f"endpointUrl must not have a query string or fragment, {example}.")
    if parts.path not in ("", "/"):
        first = parts.path.strip("/").split("/", 1)[0]
        raise _Bad(
            "endpointUrl must not have a path: s3dest puts the bucket in the path itself "
            f"(path-style). If {first!r} is the bucket, set bucket to it and endpointUrl "
            f"to '{scheme}://{parts.netloc.lower()}'."
        )
    canonical = f"{scheme}://{parts.netloc.lower()}"
    if scheme == "http" and not _is_local_host(host):
        warnings.append(
            "endpointUrl uses http://, so credentials' signatures and every message cross "
            "the network unencrypted; use https:// unless the network is private."
        )
    return canonical


def _is_local_host(host: str) -> bool:
    host = host.lower()
    return host in ("localhost", "::1") or host.startswith("127.") or host.endswith(".localhost")


def _check_write_mode(value: Any) -> WriteMode:
    if value is None:
        return DEFAULT_WRITE_MODE
    if isinstance(value, str):
        candidate = value.strip().lower().replace("_", "-")
        if not candidate:
            return DEFAULT_WRITE_MODE
        for mode in WRITE_MODES:
            if candidate == mode:
                return mode
    raise _Bad(_WRITE_MODE_HINT)


def _check_enabled(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):
        return value
    raise _Bad(f"enabled must be true or false, not {_type(value)}.")


def _check_key_template(value: Any, check: KeyTemplateChecker, warnings: list[str]) -> str | None:
    text = _optional_text("keyTemplate", value)
    if text is None:
        return None
    try:
        found = check(text)
    except InvalidInput as exc:
        message = exc.fields.get("keyTemplate")
        if message is None:
            message = " ".join(exc.fields.values()) if exc.fields else exc.message
        raise _Bad(_sentence(message)) from None
    warnings.extend(found)
    return text


# -------------------------------------------------------------------- helpers


def _unwrap(value: Any) -> Any:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def _required_text(name: str, value: Any) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise _Bad(_REQUIRED_HINTS[name])
    if not isinstance(value, str):
        raise _Bad(f"{name} must be a string, not {_type(value)}.")
    return value.strip()


def _optional_text(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Bad(f"{name} must be a string or null, not {_type(value)}.")
    text = value.strip()
    return text or None


def _type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, str):
        return "a string"
    return f"a {type(value).__name__}"


def _char(c: str) -> str:
    if c == " ":
        return "a space"
    if c.isspace() or not c.isprintable():
        return f"the character {c!r}"
    return f"'{c}'"


def _chars(chars: Sequence[str]) -> str:
    return _and([_char(c) for c in chars])


def _describe_bad(text: str, allowed: frozenset[str]) -> str:
    bad = sorted({c for c in text if c not in allowed})
    return f", including {_chars(bad)}" if bad else ""


def _and(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def _invalid(errors: Mapping[str, str]) -> InvalidInput:
    ordered = sorted(
        errors.items(),
        key=lambda item: (
            DESTINATION_FIELDS.index(item[0]) if item[0] in DESTINATION_FIELDS else 99,
            item[0],
        ),
    )
    fields = dict(ordered)
    names = ", ".join(fields)
    if len(fields) == 1:
        (only,) = fields.values()
        message = f"invalid destination: {only}"
    else:
        message = f"invalid destination: {len(fields)} fields need fixing ({names})"
    return InvalidInput(message, fields)
