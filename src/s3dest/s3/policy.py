"""The IAM policies a destination needs, built from its configuration (SPEC §3, §8).

Least privilege, extended by exactly what each option adds: every write is a PutObject;
an `acl` makes S3 check s3:PutObjectAcl on it, `tags` s3:PutObjectTagging, SSE-KMS
kms:GenerateDataKey (and kms:Decrypt, which S3 needs to complete a multipart upload of
an SSE-KMS object). A role destination adds, on s3dest's side, sts:AssumeRole on that
role, and a trust policy on the role naming s3dest's principal and the destination's
external id. The API, the dashboard, the diagnoses and the README show these documents.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from s3dest.s3.partitions import arn_partition

__all__ = [
    "KMS_ACTIONS",
    "PolicyInputs",
    "assume_role_policy",
    "policy_inputs_for",
    "policy_json",
    "required_actions",
    "s3_actions",
    "trust_policy",
    "write_policy",
]

KMS_ACTIONS: tuple[str, ...] = ("kms:GenerateDataKey", "kms:Decrypt")
_VERSION = "2012-10-17"


@dataclass(frozen=True, slots=True)
class PolicyInputs:
    """What of a destination's configuration decides its permissions."""

    bucket: str
    acl: bool = False
    tags: bool = False
    kms: bool = False
    kms_key_id: str | None = None
    # Not a permission, but what a bucket policy may require (diagnoses name it).
    encrypted: bool = False
    partition: str = "aws"  # of the bucket's region: arn:aws-cn:s3:::… in China


def policy_inputs_for(
    *,
    bucket: str,
    region: str,
    acl: str | None,
    tags: object,
    server_side_encryption: str | None,
    kms_key_id: str | None,
) -> PolicyInputs:
    """The inputs of a destination's configuration, stored (the API's view) or loaded
    for delivery (the writer's diagnoses): one mapping, so both show the same policy."""
    return PolicyInputs(
        bucket=bucket,
        acl=acl is not None,
        tags=bool(tags),
        kms=server_side_encryption == "aws:kms",
        kms_key_id=kms_key_id,
        encrypted=server_side_encryption is not None,
        partition=arn_partition(region),
    )


def s3_actions(inputs: PolicyInputs) -> list[str]:
    actions = ["s3:PutObject"]
    if inputs.acl:
        actions.append("s3:PutObjectAcl")
    if inputs.tags:
        actions.append("s3:PutObjectTagging")
    return actions


def required_actions(inputs: PolicyInputs) -> list[str]:
    """Every action the destination's writes need, S3's first."""
    return s3_actions(inputs) + (list(KMS_ACTIONS) if inputs.kms else [])


def _kms_resource(key_id: str | None) -> str:
    # A key ARN scopes the grant to that key; an alias or a bare key id cannot be turned
    # into the key's ARN without the key owner's account, so the grant is then any key
    # (the key's own policy still decides who may use it).
    if key_id and key_id.startswith("arn:") and ":key/" in key_id:
        return key_id
    return "*"


def write_policy(inputs: PolicyInputs) -> dict[str, Any]:
    """The permissions policy for the IAM user or role that writes: nothing more."""
    actions = s3_actions(inputs)
    statements: list[dict[str, Any]] = [
        {
            "Effect": "Allow",
            # One action as a string, as AWS's own examples (and the plain key's advice) write it.
            "Action": actions[0] if len(actions) == 1 else actions,
            "Resource": f"arn:{inputs.partition}:s3:::{inputs.bucket}/*",
        }
    ]
    if inputs.kms:
        statements.append(
            {
                "Effect": "Allow",
                "Action": list(KMS_ACTIONS),
                "Resource": _kms_resource(inputs.kms_key_id),
            }
        )
    return {"Version": _VERSION, "Statement": statements}


def trust_policy(principal_arn: str, external_id: str) -> dict[str, Any]:
    """The role's trust policy: s3dest's principal, only with this destination's id."""
    return {
        "Version": _VERSION,
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": principal_arn},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": external_id}},
            }
        ],
    }


def assume_role_policy(role_arn: str) -> dict[str, Any]:
    """What s3dest's own identity needs (the operator's side) for one role."""
    return {
        "Version": _VERSION,
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role_arn}],
    }


def policy_json(policy: dict[str, Any]) -> str:
    return json.dumps(policy, indent=2)
