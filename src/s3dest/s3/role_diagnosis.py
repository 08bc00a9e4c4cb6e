"""Diagnoses of role destinations and of SSE-KMS (SPEC §8): what failed, whose side it is
on, and the exact document that fixes it.

A role destination can fail at four places, told apart here:

* s3dest has no AWS identity of its own (the operator's side: nothing in the chain);
* s3dest's identity is not valid, or may not call sts:AssumeRole (the operator's side);
* the role refuses s3dest (the customer's trust policy: its principal, or its
  sts:ExternalId condition — AWS answers both with the same AccessDenied, so the
  diagnosis names both and shows the one trust policy that fixes either);
* the assumed role may not write (the customer's permissions policy: s3:PutObject and
  what the options add, see `s3.policy`).

Nothing here repeats a secret: AWS's messages name ARNs and actions only, and are
bounded through `reply_text`.
"""

from __future__ import annotations

from s3dest.errors import DeliveryError, DestinationError, TransientDeliveryError
from s3dest.s3 import reply_text
from s3dest.s3.policy import (
    KMS_ACTIONS,
    PolicyInputs,
    assume_role_policy,
    policy_json,
    trust_policy,
    write_policy,
)

__all__ = [
    "EXPLICIT_DENY",
    "NO_IDENTITY",
    "assume_role_failed",
    "bucket_policy_hint",
    "identity_invalid",
    "kms_denied",
    "no_identity",
    "write_denied",
]

#: How S3 says that a policy's explicit Deny refused the request (the bucket policy's,
#: for a request whose identity policy allows it).
EXPLICIT_DENY = "explicit deny in a resource-based policy"

NO_IDENTITY = (
    "s3dest has no AWS identity: none of the standard sources gave it credentials "
    "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE and the shared config files, "
    "a web identity token (EKS IRSA), ECS container credentials, EC2 instance metadata). "
    "Role destinations need one: the operator of s3dest gives the s3dest process an IAM "
    "identity allowed sts:AssumeRole; nothing on the role's side can fix this."
)


def no_identity(role_arn: str) -> DestinationError:
    return DestinationError(
        "s3dest has no AWS identity to assume the role with",
        s3_code="NoCredentials",
        status=None,
        diagnosis=f"{NO_IDENTITY} (role {role_arn})",
    )


def identity_invalid(code: str, role_arn: str) -> DestinationError:
    code = reply_text.s3_code(code) or "InvalidClientTokenId"
    diagnosis = (
        f"STS did not accept s3dest's own AWS credentials ({code}) when assuming {role_arn}: "
        "they are deleted, mistyped, expired, or from another partition. This is the "
        "operator's side: fix the identity the s3dest process runs with."
    )
    return DestinationError(
        f"{code}: s3dest's own AWS identity", s3_code=code, status=403, diagnosis=diagnosis
    )


def assume_role_failed(
    *,
    code: str | None,
    message: str,
    role_arn: str,
    external_id: str | None,
    principal_arn: str | None,
) -> DeliveryError:
    """Translate STS's refusal of AssumeRole (`external_id` None: `s3dest put` without
    --external-id)."""
    code = reply_text.s3_code(code)
    said = reply_text.message(message)
    if code in ("InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken"):
        return identity_invalid(code, role_arn)
    if code in ("Throttling", "ThrottlingException", "ServiceUnavailable", "InternalFailure"):
        return TransientDeliveryError(
            f"temporary STS failure: {code}; retrying", s3_code=code, status=None
        )
    if code == "RegionDisabledException":
        diagnosis = (
            "STS is not activated in this destination's region for the role's account; "
            "activate it (IAM console → Account settings → Security Token Service) or "
            "use a region where it is."
        )
        return DestinationError(diagnosis, s3_code=code, status=403, diagnosis=diagnosis)
    if code == "AccessDenied" and "identity-based policy" in said:
        diagnosis = (
            f"s3dest's own identity ({principal_arn or 'unknown'}) may not call "
            f"sts:AssumeRole on {role_arn}. This is the operator's side: attach to s3dest's "
            f"identity:\n{policy_json(assume_role_policy(role_arn))}"
        )
        return DestinationError(
            f"AccessDenied: s3dest may not assume {role_arn}",
            s3_code=code,
            status=403,
            diagnosis=diagnosis,
        )
    if code == "AccessDenied" and external_id is None:
        return _refused_without_external_id(role_arn, principal_arn)
    if code == "AccessDenied" and external_id is not None:
        principal = principal_arn or "<s3dest's principal>"
        diagnosis = (
            f"The role {role_arn} does not let s3dest assume it with this destination's "
            f"external id {external_id}. Either its trust policy does not name s3dest's "
            f"principal {principal}, or its sts:ExternalId condition is not {external_id} "
            "(for example the external id of another destination); AWS gives the same "
            "answer for both, and for a role that does not exist. Set the role's trust "
            f"policy to:\n{policy_json(trust_policy(principal, external_id))}"
        )
        return DestinationError(
            f"AccessDenied: the role {role_arn} refused s3dest",
            s3_code=code,
            status=403,
            diagnosis=diagnosis,
        )
    if code == "ValidationError" and "DurationSeconds" in said:
        diagnosis = (
            f"The role {role_arn} does not allow sessions as long as s3dest asks for "
            "(S3DEST_ROLE_SESSION_SECONDS); raise the role's maximum session duration or "
            f"ask the operator to lower the setting. STS said: {said}"
        )
        return DestinationError(diagnosis, s3_code=code, status=400, diagnosis=diagnosis)
    diagnosis = f"STS refused to let s3dest assume {role_arn}: {code or 'error'}: {said}"
    return DestinationError(diagnosis, s3_code=code, status=None, diagnosis=diagnosis)


def _refused_without_external_id(role_arn: str, principal_arn: str | None) -> DestinationError:
    diagnosis = (
        f"The role {role_arn} does not let {principal_arn or 'this identity'} assume it "
        "without an external id: either its trust policy does not name this principal, "
        "or it requires sts:ExternalId (give it with --external-id); AWS gives the same "
        "answer for both, and for a role that does not exist."
    )
    return DestinationError(
        f"AccessDenied: the role {role_arn} refused s3dest",
        s3_code="AccessDenied",
        status=403,
        diagnosis=diagnosis,
    )


def write_denied(
    *, bucket: str, who: str, inputs: PolicyInputs, role: bool, s3_message: str
) -> DestinationError:
    """AccessDenied on the PUT itself: the writer lacks one of the actions it needs, or
    the bucket policy denies the write."""
    if "kms:" in s3_message:
        return kms_denied(bucket=bucket, who=who, inputs=inputs, s3_message=s3_message)
    if EXPLICIT_DENY in s3_message:
        return bucket_policy_denied(bucket=bucket, inputs=inputs)
    kind = "role" if role else "IAM user or role"
    extra = ""
    if inputs.acl or inputs.tags:
        extra = (
            " With acl or tags S3 checks s3:PutObjectAcl / s3:PutObjectTagging on the same "
            "PUT, so each must be allowed too."
        )
    diagnosis = (
        f"Access denied: {who} is not allowed to write to bucket '{bucket}' as this "
        f"destination is configured.{extra} Attach this policy to the {kind}:\n"
        f"{policy_json(write_policy(inputs))}\nA bucket policy with an explicit Deny (for "
        "example one that refuses unencrypted writes: set serverSideEncryption) overrides it."
    )
    return DestinationError(
        f"AccessDenied writing to bucket '{bucket}'",
        s3_code="AccessDenied",
        status=403,
        diagnosis=diagnosis,
    )


def bucket_policy_hint(inputs: PolicyInputs) -> str:
    """What to change when a bucket policy's Deny refuses the write."""
    if inputs.encrypted:
        return (
            "The destination already asks for server-side encryption; check what else the "
            "bucket policy's Deny requires (a particular serverSideEncryption or kmsKeyId, "
            "a source VPC, TLS)."
        )
    return (
        "Buckets often deny writes that are not server-side encrypted: set the "
        "destination's serverSideEncryption to 'AES256' or 'aws:kms' (with kmsKeyId if "
        "the policy names a key)."
    )


def bucket_policy_denied(*, bucket: str, inputs: PolicyInputs) -> DestinationError:
    diagnosis = (
        f"The bucket policy of '{bucket}' explicitly denies this write; no IAM permission "
        f"overrides an explicit Deny. {bucket_policy_hint(inputs)}"
    )
    return DestinationError(
        f"AccessDenied: the bucket policy of '{bucket}' denies the write",
        s3_code="AccessDenied",
        status=403,
        diagnosis=diagnosis,
    )


def kms_denied(*, bucket: str, who: str, inputs: PolicyInputs, s3_message: str) -> DestinationError:
    key = inputs.kms_key_id or "the bucket's KMS key"
    kms_only = PolicyInputs(bucket=bucket, kms=True, kms_key_id=inputs.kms_key_id)
    statement = write_policy(kms_only)["Statement"][1]
    diagnosis = (
        f"KMS refused: {who} may not use {key} to encrypt objects in bucket '{bucket}' "
        f"({' and '.join(KMS_ACTIONS)} are needed; S3 said: {reply_text.message(s3_message)}). "
        "Add this statement to its policy, and allow the same in the key's key policy if "
        f"the key is in another account:\n{policy_json(statement)}"
    )
    return DestinationError(
        f"KMS AccessDenied writing to bucket '{bucket}'",
        s3_code="AccessDenied",
        status=403,
        diagnosis=diagnosis,
    )
