"""Translate S3 failures into s3dest's errors, once, with a diagnosis a person can act on.

The object-store client reports a failed request as an exception whose text carries the
HTTP status and S3's XML error document; this module is the only place that reads it. The
endpoint may be anyone's server, so what is taken from its reply goes through
`s3.reply_text` (a code, a bounded plain message, a region that looks like one).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from s3dest.errors import (
    DeliveryError,
    DestinationError,
    MessageDeliveryError,
    TransientDeliveryError,
)
from s3dest.s3 import reply_text, role_diagnosis
from s3dest.s3.egress import SETTING as ALLOW_SETTING
from s3dest.s3.partitions import arn_partition
from s3dest.s3.policy import PolicyInputs, required_actions

_STATUS = re.compile(r"(?:status code|status):? (\d{3})")
_CODE = re.compile(r"<Code>([^<]*)</Code>")
_MESSAGE = re.compile(r"<Message>([^<]*)</Message>")
_REGION = re.compile(r"<Region>([^<]*)</Region>")
_ENDPOINT = re.compile(r"<Endpoint>([^<]*)</Endpoint>")
_EXPECTING = re.compile(r"expecting '([a-z0-9-]+)'")
_ENDPOINT_REGION = re.compile(r"(?:^|\.)s3[.-]([a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com")

TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "RequestTimeout",
        "InternalError",
        "ServiceUnavailable",
        "ConditionalRequestConflict",
        "OperationAborted",
        # Per-attempt integrity errors: the body (or its digest header) was damaged on the
        # way; the same request sent again succeeds.
        "BadDigest",
        "InvalidDigest",
        "XAmzContentSHA256Mismatch",
        "IncompleteBody",
        "RequestTimeTooSkewed",
        "Throttling",
        "ThrottlingException",
        "TooManyRequests",
    }
)
MESSAGE_CODES = frozenset({"KeyTooLongError", "MetadataTooLarge", "EntityTooLarge"})
REGION_CODES = frozenset(
    {"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"}
)


@dataclass(frozen=True, slots=True)
class Target:
    """What the diagnosis may name: never the secret."""

    bucket: str
    region: str
    access_key_id_masked: str
    endpoint_url: str | None = None
    storage_class: str = "STANDARD"
    role_arn: str | None = None  # a role destination: the role s3dest assumed
    policy: PolicyInputs | None = None  # what the configuration needs (s3.policy)

    @property
    def service(self) -> str:
        """Who answered, as a diagnosis names it: AWS only when it is AWS."""
        return f"the storage service at {self.endpoint_url}" if self.endpoint_url else "AWS"

    def needs_more_than_putobject(self) -> bool:
        return self.policy is not None and required_actions(self.policy) != ["s3:PutObject"]


def putobject_policy(bucket: str, partition: str = "aws") -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "s3:PutObject",
                    "Resource": f"arn:{partition}:s3:::{bucket}/*",
                }
            ],
        },
        indent=2,
    )


def bucket_region(text: str) -> str | None:
    """The bucket's real region from an AWS error document, when it names one."""
    for pattern in (_REGION, _EXPECTING):
        found = pattern.search(text)
        if found and found.group(1):
            return reply_text.region(found.group(1))
    endpoint = _ENDPOINT.search(text)
    if endpoint:
        found = _ENDPOINT_REGION.search(endpoint.group(1))
        if found:
            return reply_text.region(found.group(1))
        if endpoint.group(1).endswith(".s3.amazonaws.com") or endpoint.group(1) == (
            "s3.amazonaws.com"
        ):
            return "us-east-1"
    return None


def diagnose(
    *,
    status: int | None,
    s3_code: str | None,
    text: str,
    target: Target,
    region_header: str | None = None,
) -> DeliveryError:
    """Classify one failed request and explain it."""
    bucket, region, key_id = target.bucket, target.region, target.access_key_id_masked
    where = f"bucket '{bucket}'"
    s3_code = reply_text.s3_code(s3_code)
    region_header = reply_text.region(region_header)
    found = _MESSAGE.search(text)
    s3_message = reply_text.message(found.group(1)) if found else ""
    # Searched, never shown as it is (role_diagnosis bounds what it quotes): the
    # bounded message may have lost its end, where AWS says why it denied.
    raw_message = found.group(1)[:4096] if found else ""
    detail = f" (S3 said: {s3_code}: {s3_message})" if s3_code and s3_message else ""

    if s3_code in REGION_CODES or status == 301 or region_header:
        real = region_header or bucket_region(text)
        if real and real != region:
            diagnosis = (
                f"The {where} is in region '{real}', not '{region}'. "
                f"Change the destination's region to '{real}'."
            )
        else:
            diagnosis = (
                f"S3 refused the request for {where} because it was sent to the wrong region "
                f"('{region}'). Check the bucket's region in the S3 console (bucket properties) "
                "and set it on the destination."
            )
        return DestinationError(
            diagnosis + detail, s3_code=s3_code, status=status, diagnosis=diagnosis
        )
    if (
        s3_code == "AccessDenied"
        or s3_code == "AllAccessDisabled"
        or (status == 403 and s3_code is None)
    ) and (
        target.role_arn
        or target.needs_more_than_putobject()
        or "kms:" in raw_message
        or role_diagnosis.EXPLICIT_DENY in raw_message
    ):
        # SPEC §8: a role, acl/tags or SSE-KMS need more than the plain key's advice.
        who = f"the role {target.role_arn}" if target.role_arn else f"access key {key_id}"
        return role_diagnosis.write_denied(
            bucket=bucket,
            who=who,
            inputs=target.policy or PolicyInputs(bucket=bucket),
            role=target.role_arn is not None,
            s3_message=raw_message,
        )
    if (
        s3_code == "AccessDenied"
        or s3_code == "AllAccessDisabled"
        or (status == 403 and s3_code is None)
    ):
        partition = arn_partition(target.region)
        # S3-compatible stores (Ceph RGW) say a bare AccessDenied for a bucket policy's
        # Deny too, so the bucket policy is named as the other cause, with its usual fix.
        diagnosis = (
            f"Access denied: the credentials (access key {key_id}) are not allowed to write to "
            f"{where}. They need s3:PutObject on arn:{partition}:s3:::{bucket}/*. Attach this "
            f"policy to the IAM user or role:\n{putobject_policy(bucket, partition)}\nIf they "
            "already have it, the bucket policy denies the write with an explicit Deny, which "
            "no IAM permission overrides. "
            + role_diagnosis.bucket_policy_hint(target.policy or PolicyInputs(bucket=bucket))
            + " If the bucket encrypts with a customer-managed KMS key, the key policy must "
            "also allow kms:GenerateDataKey."
        )
        return DestinationError(
            f"AccessDenied writing to {where}",
            s3_code=s3_code,
            status=status,
            diagnosis=diagnosis,
        )
    if s3_code == "InvalidAccessKeyId":
        diagnosis = (
            f"{_cap(target.service)} does not recognise the access key id {key_id}: it was "
            "deleted or deactivated, mistyped, or "
            + (
                "belongs to another AWS partition. Create a new access key for the IAM user"
                if target.endpoint_url is None
                else "belongs to another store or account. Create a new access key there"
            )
            + " and update the destination's access key id and secret."
        )
        return DestinationError(
            f"InvalidAccessKeyId for {where}", s3_code=s3_code, status=status, diagnosis=diagnosis
        )
    if s3_code == "SignatureDoesNotMatch":
        diagnosis = (
            f"The secret access key does not belong to access key id {key_id}: "
            f"{target.service} could not verify the request's signature. Paste the secret "
            "again exactly as it was shown when the key was created (no spaces or line "
            "breaks), or create a new access key."
        )
        return DestinationError(
            f"SignatureDoesNotMatch for {where}",
            s3_code=s3_code,
            status=status,
            diagnosis=diagnosis,
        )
    if s3_code in ("ExpiredToken", "TokenRefreshRequired", "InvalidToken"):
        diagnosis = (
            "The session token has expired or is invalid: temporary credentials only last a "
            "few hours. Update the destination with fresh temporary credentials (access key id, "
            "secret and session token together), or use an IAM user's long-lived keys without a "
            "session token."
        )
        return DestinationError(
            f"{s3_code} for {where}", s3_code=s3_code, status=status, diagnosis=diagnosis
        )
    if s3_code == "NoSuchBucket" or (status == 404 and s3_code is None):
        place = f"at {target.endpoint_url}" if target.endpoint_url else f"in region '{region}'"
        diagnosis = (
            f"The {where} does not exist {place}. Check the exact bucket name in the S3 console "
            "(names are lower-case), or create it: aws s3api create-bucket --bucket "
            f"{bucket} --region {region}"
            + (
                f" --create-bucket-configuration LocationConstraint={region}"
                if region != "us-east-1"
                else ""
            )
        )
        return DestinationError(
            f"NoSuchBucket: {bucket}", s3_code=s3_code, status=status, diagnosis=diagnosis
        )
    if s3_code == "InvalidStorageClass" or (
        s3_code == "InvalidArgument" and target.storage_class != "STANDARD"
    ):
        # S3-compatible stores say InvalidArgument for a class they do not have (RGW: one
        # not declared in the zone's placement).
        diagnosis = (
            f"The {where} does not accept the destination's storage class (storageClass "
            f"{target.storage_class}){detail}. Set storageClass to another class "
            + (
                "(S3-compatible stores often support only STANDARD; Ceph RGW needs every other "
                "class declared in its zone's placement)."
                if target.endpoint_url
                else "(EXPRESS_ONEZONE needs a directory bucket)."
            )
        )
        return DestinationError(
            f"{s3_code} for {where}: storageClass {target.storage_class}",
            s3_code=s3_code,
            status=status,
            diagnosis=diagnosis,
        )
    if s3_code in MESSAGE_CODES:
        return MessageDeliveryError(
            f"S3 rejected this message's object: {s3_code}{detail}",
            s3_code=s3_code,
            status=status,
        )
    if status in (302, 303, 307, 308) and s3_code is None:
        return redirect_not_followed(target, status)
    # before the 5xx rule: a 501 is permanent, retrying it would never end
    if s3_code == "NotImplemented":
        diagnosis = (
            f"The storage service behind {where} does not implement a feature s3dest uses "
            f"{detail.strip()}. With an S3-compatible store, try writeMode 'overwrite' and "
            "storage class STANDARD."
        )
        return DestinationError(diagnosis, s3_code=s3_code, status=status, diagnosis=diagnosis)
    if s3_code in TRANSIENT_CODES or status is None or status >= 500 or status == 429:
        reason = s3_code or (f"HTTP {status}" if status else _first_line(text))
        return TransientDeliveryError(
            f"temporary S3 failure: {reason}; retrying", s3_code=s3_code, status=status
        )
    # Any other client error on a PutObject is about the destination's setup: hold the
    # messages (nothing is lost) and show S3's own words.
    diagnosis = f"S3 refused writes to {where}: {s3_code or f'HTTP {status}'}{detail}"
    return DestinationError(diagnosis, s3_code=s3_code, status=status, diagnosis=diagnosis)


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return reply_text.message(line) or "unknown error"


def redirect_not_followed(target: Target, status: int | None) -> DestinationError:
    """The endpoint answered with a redirect: s3dest never follows one (SPEC §7)."""
    what = f"HTTP {status}, a redirect" if status else "a redirect to another host"
    endpoint = f"The endpoint {target.endpoint_url}" if target.endpoint_url else "S3"
    diagnosis = (
        f"{endpoint} answered with {what}; s3dest does not follow redirects. Set "
        "endpointUrl to the address of the storage service itself."
    )
    return DestinationError(
        f"redirect not followed ({what})", s3_code=None, status=status, diagnosis=diagnosis
    )


def endpoint_not_allowed(reason: str, target: Target) -> DestinationError:
    """The endpoint policy refused the connection (SPEC §7): said the same way whatever
    listens at the address, since nothing was sent there."""
    diagnosis = (
        f"The endpoint is not allowed: {reason}. s3dest does not connect to loopback, "
        "private, link-local or cloud metadata addresses. Point endpointUrl at the storage "
        "service's public address, or ask the operator to allow this host with "
        f"{ALLOW_SETTING}."
    )
    return DestinationError(
        f"endpoint not allowed: {reason}", s3_code=None, status=None, diagnosis=diagnosis
    )


def is_region_redirect(text: str) -> bool:
    """A 301 from S3: the request went to the wrong region's endpoint.

    S3's PermanentRedirect has no Location header, and object_store then reports only
    "Received redirect without LOCATION" (BareRedirect) with neither status nor body, so
    the bucket's region has to be learned separately (see writer._probe_bucket_region).
    """
    if "redirect without LOCATION" in text or "BareRedirect" in text:
        return True
    status = _STATUS.search(text)
    return bool(status and status.group(1) == "301")


def from_client_error(
    exc: BaseException, target: Target, *, region_header: str | None = None
) -> DeliveryError:
    """Translate an exception from the object-store client.

    `region_header` is the bucket's region when the caller learned it (x-amz-bucket-region).
    """
    text = str(exc)
    if is_region_redirect(text):
        return diagnose(
            status=301,
            s3_code="PermanentRedirect",
            text=text,
            target=target,
            region_header=region_header,
        )
    status_match = _STATUS.search(text)
    status = int(status_match.group(1)) if status_match else None
    code_match = _CODE.search(text)
    s3_code = reply_text.s3_code(code_match.group(1)) if code_match else None
    if status is None and code_match is None:
        lowered = text.lower()
        # Not a bare "timeout": object_store's debug text always has "retry_timeout: 30s".
        if "kind: timeout" in lowered or "timedout" in lowered or "timed out" in lowered:
            return TransientDeliveryError(
                "S3 did not answer in time; retrying", s3_code=None, status=None
            )
        if _tls_to_plain_http(text) and (target.endpoint_url or "").startswith("https://"):
            diagnosis = (
                f"The endpoint {target.endpoint_url} did not answer in TLS: the port serves "
                "plain HTTP. Change endpointUrl to http://… (or to the store's HTTPS port)."
            )
            return DestinationError(
                "TLS to a plain-HTTP port", s3_code=None, status=None, diagnosis=diagnosis
            )
        if "error sending request" in lowered or "connect" in lowered:
            return TransientDeliveryError(
                f"could not reach S3 ({_connection_hint(target)}); retrying",
                s3_code=None,
                status=None,
            )
        return TransientDeliveryError(
            f"S3 request failed: {_first_line(text)}; retrying", s3_code=None, status=None
        )
    return diagnose(status=status, s3_code=s3_code, text=text, target=target)


def _tls_to_plain_http(text: str) -> bool:
    """rustls's words for a TLS handshake answered in plain HTTP (obstore's error text)."""
    return (
        "InvalidContentType" in text or "CorruptMessage" in text or "wrong version number" in text
    )


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _connection_hint(target: Target) -> str:
    return f"endpoint {target.endpoint_url}" if target.endpoint_url else "the AWS endpoint"
