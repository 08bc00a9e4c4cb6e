"""What a destination's user must set up on AWS, as the API and the dashboard show it
(SPEC §8): the exact actions its configuration needs, the permissions policy, and for a
role destination the external id and the trust policy naming s3dest's own principal.
"""

from __future__ import annotations

from typing import Any

from s3dest.errors import DeliveryError
from s3dest.s3 import credentials
from s3dest.s3.policy import (
    PolicyInputs,
    policy_inputs_for,
    required_actions,
    trust_policy,
    write_policy,
)
from s3dest.s3.role_diagnosis import NO_IDENTITY
from s3dest.store.destinations import DestinationRow

__all__ = ["ACCESS_VIEW_FIELDS", "access_view", "policy_inputs", "principal_view"]

ACCESS_VIEW_FIELDS = (
    "externalId",
    "requiredActions",
    "iamPolicy",
    "trustPolicy",
    "s3destPrincipal",
    "s3destIdentityNote",
)
#: Stands in for s3dest's principal in a trust policy while s3dest has none.
PRINCIPAL_PLACEHOLDER = "<s3dest's AWS principal: s3dest has no AWS identity yet>"


def policy_inputs(row: DestinationRow) -> PolicyInputs:
    return policy_inputs_for(
        bucket=row.bucket,
        region=row.region,
        acl=row.acl,
        tags=row.tags,
        server_side_encryption=row.server_side_encryption,
        kms_key_id=row.kms_key_id,
    )


def principal_view() -> tuple[str | None, str | None]:
    """(s3dest's principal ARN, None) or (None, why it is unknown)."""
    try:
        found = credentials.identity()
    except DeliveryError as exc:
        return None, exc.diagnosis or str(exc)
    if found is None:
        return None, NO_IDENTITY
    return found.principal_arn, None


def access_view(row: DestinationRow) -> dict[str, Any]:
    inputs = policy_inputs(row)
    view: dict[str, Any] = {
        "externalId": None,
        "requiredActions": required_actions(inputs),
        "iamPolicy": write_policy(inputs),
        "trustPolicy": None,
        "s3destPrincipal": None,
        "s3destIdentityNote": None,
    }
    if row.role_arn and row.external_id:
        principal, note = principal_view()
        view.update(
            externalId=row.external_id,
            requiredActions=view["requiredActions"],
            trustPolicy=trust_policy(principal or PRINCIPAL_PLACEHOLDER, row.external_id),
            s3destPrincipal=principal,
            s3destIdentityNote=note,
        )
    return view
