"""The one exception tree of s3dest.

Foreign errors (obstore/object_store, SQLAlchemy, YAML, JMESPath, httpx) are translated into
these at exactly one boundary each, so callers only ever catch s3dest's own classes::

    S3destError                       the root: every error s3dest raises on purpose
    ├── InvalidInput                  bad input from a user; names the field and the fix (422)
    │   ├── MessageInvalid            a message that cannot be accepted
    │   ├── KeyTemplateInvalid        a key template that does not compile or render
    │   └── ManifestInvalid           an amp.yaml that does not validate; says line and column
    ├── NotFound                      an object that does not exist (or is not yours) (404)
    ├── Conflict                      a duplicate name, a destination still in use (409)
    ├── StorageUnavailable            the database cannot store what was sent (503)
    ├── PayloadTooLarge               a request body above the configured limit (413)
    ├── Unauthorized                  no API key, or not a valid one (401)
    ├── TooBusy                       a fair-share bound is reached; retry later (429)
    ├── ApiError                      `s3dest.Client`: any other error answer of the server;
    │                                 carries its status, code and fields
    └── DeliveryError                 writing one message to S3 failed; has a `kind`
        ├── TransientDeliveryError    retry later: 5xx, SlowDown, timeouts, resets
        ├── DestinationError          the destination is broken; carries a diagnosis
        └── MessageDeliveryError      this message can never be written as it is
            └── KeyRenderError        its key template gives no valid key for it

The API answers every one of them with the same shape, ``{"error": {"code", "message",
"fields"}}``, `code` being the class's `code`; `s3dest.Client` raises the matching class
again (422 → InvalidInput, 404 → NotFound, 409 → Conflict, 503 → StorageUnavailable,
anything else → ApiError).

`DeliveryError.kind` is the classification the delivery loop acts on:
"transient" → retry with backoff, "destination" → hold every message of the
destination, "message" → park this message with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DeliveryErrorKind = Literal["transient", "destination", "message"]


def utf8_safe(text: str) -> str:
    """`text` with lone surrogates escaped (\\udxxx): error messages echo user input (a JSON
    escape can decode to one), and they must be writable as UTF-8 to responses and logs."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class S3destError(Exception):
    """Root of every error s3dest raises on purpose."""

    code: str = "error"

    def __init__(self, message: str) -> None:
        message = utf8_safe(message)
        super().__init__(message)
        self.message = message


class InvalidInput(S3destError):
    """Input that cannot be used. `fields` maps a field path to what is wrong with it."""

    code = "invalid_input"

    def __init__(self, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.fields: dict[str, str] = {
            utf8_safe(k): utf8_safe(v) for k, v in (fields or {}).items()
        }


class MessageInvalid(InvalidInput):
    code = "invalid_message"


class KeyTemplateInvalid(InvalidInput):
    code = "invalid_key_template"


class ManifestInvalid(InvalidInput):
    code = "invalid_manifest"


class NotFound(S3destError):
    code = "not_found"


class Conflict(S3destError):
    code = "conflict"


class StorageUnavailable(S3destError):
    """The database refused to store accepted input (disk full, read-only, unreachable)."""

    code = "storage_unavailable"


class PayloadTooLarge(S3destError):
    """A request body larger than S3DEST_MAX_REQUEST_BYTES (or a batch above its limit)."""

    code = "payload_too_large"


class Unauthorized(S3destError):
    code = "unauthorized"


class TooBusy(S3destError):
    """A project (or the process) is at one of its fair-share bounds (SPEC §7): the
    request is refused at once rather than queued behind others; `bound` names the
    setting, `retry_after` is the Retry-After in seconds."""

    code = "too_busy"

    def __init__(self, message: str, *, bound: str, retry_after: int) -> None:
        super().__init__(message)
        self.bound = bound
        self.retry_after = retry_after


class ApiError(S3destError):
    """An error answer from the s3dest server, with its status and fields."""

    def __init__(self, status: int, code: str, message: str, fields: dict[str, str]) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.fields = fields


class DeliveryError(S3destError):
    """Writing one message to S3 failed.

    `s3_code` is S3's own error code when the server sent one (``AccessDenied``…),
    `status` the HTTP status, `diagnosis` a sentence a person can act on.
    """

    kind: DeliveryErrorKind = "transient"
    code = "delivery_failed"

    def __init__(
        self,
        message: str,
        *,
        s3_code: str | None = None,
        status: int | None = None,
        diagnosis: str | None = None,
    ) -> None:
        super().__init__(message)
        self.s3_code = s3_code
        self.status = status
        self.diagnosis = diagnosis or message
        # A multipart upload this attempt left behind because its abort was refused.
        self.orphan: OrphanedUpload | None = None


@dataclass(frozen=True, slots=True)
class OrphanedUpload:
    """A multipart upload s3dest could not abort (a PutObject-only key may not): its parts
    stay in the bucket, billed, until the bucket's AbortIncompleteMultipartUpload lifecycle
    rule removes them. `reason` is why the abort failed; it is never the diagnosis."""

    bucket: str
    key: str
    upload_id: str
    reason: str


class TransientDeliveryError(DeliveryError):
    kind: DeliveryErrorKind = "transient"
    code = "transient"


class DestinationError(DeliveryError):
    kind: DeliveryErrorKind = "destination"
    code = "destination_failing"


class MessageDeliveryError(DeliveryError):
    kind: DeliveryErrorKind = "message"
    code = "message_undeliverable"


class KeyRenderError(MessageDeliveryError):
    """A key template produced no valid key for one message; that message is parked."""

    code = "key_render_failed"
