"""Diagnoses of role destinations and SSE-KMS (s3.role_diagnosis): each failure its own
words, whose side it is on, and the document that fixes it; never a credential."""

from __future__ import annotations

import pytest

from s3dest.errors import DestinationError, TransientDeliveryError
from s3dest.s3 import role_diagnosis
from s3dest.s3.diagnosis import Target, diagnose
from s3dest.s3.policy import PolicyInputs

ROLE = "arn:aws:iam::123456789012:role/w"
ME = "arn:aws:iam::111122223333:user/s3dest"


def _refused(code: str, message: str = "") -> DestinationError | TransientDeliveryError:
    found = role_diagnosis.assume_role_failed(
        code=code, message=message, role_arn=ROLE, external_id="s3dest-e1", principal_arn=ME
    )
    assert isinstance(found, DestinationError | TransientDeliveryError)
    return found


def test_each_role_failure_has_its_own_diagnosis() -> None:
    texts = {
        role_diagnosis.no_identity(ROLE).diagnosis,
        _refused("InvalidClientTokenId").diagnosis,
        _refused(
            "AccessDenied",
            f"User: {ME} is not authorized to perform: sts:AssumeRole on resource: {ROLE} "
            "because no identity-based policy allows the sts:AssumeRole action",
        ).diagnosis,
        _refused(
            "AccessDenied", f"User: {ME} is not authorized to perform: sts:AssumeRole"
        ).diagnosis,
        role_diagnosis.write_denied(
            bucket="b", who=f"the role {ROLE}", inputs=PolicyInputs("b"), role=True, s3_message=""
        ).diagnosis,
    }
    assert len(texts) == 5


def test_no_identity_is_the_operators_side() -> None:
    found = role_diagnosis.no_identity(ROLE)
    assert found.diagnosis is not None
    assert "s3dest has no AWS identity" in found.diagnosis
    assert "AWS_PROFILE" in found.diagnosis and "instance metadata" in found.diagnosis


def test_trust_refusal_shows_the_trust_policy_with_the_external_id() -> None:
    found = _refused("AccessDenied", "not authorized to perform: sts:AssumeRole")
    assert found.diagnosis is not None
    assert f'"AWS": "{ME}"' in found.diagnosis
    assert '"sts:ExternalId": "s3dest-e1"' in found.diagnosis


def test_put_without_an_external_id_is_told_to_give_one() -> None:
    # `s3dest put --role-arn` without --external-id, refused by the role's trust policy.
    found = role_diagnosis.assume_role_failed(
        code="AccessDenied", message="", role_arn=ROLE, external_id=None, principal_arn=ME
    )
    assert found.diagnosis == (
        f"The role {ROLE} does not let {ME} assume it without an external id: either its "
        "trust policy does not name this principal, or it requires sts:ExternalId (give it "
        "with --external-id); AWS gives the same answer for both, and for a role that does "
        "not exist."
    )


def test_missing_sts_permission_on_s3dests_side() -> None:
    found = _refused("AccessDenied", "because no identity-based policy allows the sts:AssumeRole")
    assert found.diagnosis is not None
    assert "operator's side" in found.diagnosis
    assert f'"Resource": "{ROLE}"' in found.diagnosis


@pytest.mark.parametrize("code", ["Throttling", "ServiceUnavailable"])
def test_sts_throttling_is_transient(code: str) -> None:
    assert isinstance(_refused(code), TransientDeliveryError)


def test_session_longer_than_the_role_allows_names_the_setting() -> None:
    found = _refused(
        "ValidationError", "The requested DurationSeconds exceeds the MaxSessionDuration"
    )
    assert found.diagnosis is not None and "S3DEST_ROLE_SESSION_SECONDS" in found.diagnosis


def _s3_denied(message: str, target: Target) -> str:
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
        f"<Message>{message}</Message></Error>"
    )
    found = diagnose(status=403, s3_code="AccessDenied", text=text, target=target)
    assert isinstance(found, DestinationError) and found.diagnosis
    return found.diagnosis


def test_kms_refusal_gets_its_own_diagnosis_and_statement() -> None:
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    target = Target(
        bucket="b",
        region="us-east-1",
        access_key_id_masked="AKIA…MPLE",
        policy=PolicyInputs("b", kms=True, kms_key_id=key, encrypted=True),
    )
    text = _s3_denied(
        f"User: arn:aws:iam::123456789012:user/w is not authorized to perform: "
        f"kms:GenerateDataKey on resource: {key}",
        target,
    )
    assert text.startswith("KMS refused")
    assert '"kms:GenerateDataKey"' in text and f'"Resource": "{key}"' in text


def test_a_role_that_may_not_write_gets_the_whole_policy() -> None:
    target = Target(
        bucket="b",
        region="us-east-1",
        access_key_id_masked="",
        role_arn=ROLE,
        policy=PolicyInputs("b", acl=True, tags=True),
    )
    text = _s3_denied("Access Denied", target)
    assert f"the role {ROLE} is not allowed to write" in text
    assert '"s3:PutObjectAcl"' in text and '"s3:PutObjectTagging"' in text


def test_explicit_deny_in_the_bucket_policy_points_at_encryption() -> None:
    target = Target(bucket="b", region="us-east-1", access_key_id_masked="AKIA…MPLE")
    # The bounded message would cut this off: the reason is searched in the whole reply.
    message = (
        "User: arn:aws:iam::123456789012:user/w is not authorized to perform: s3:PutObject on "
        f'resource: "arn:aws:s3:::b/{"k" * 400}" with an explicit deny in a resource-based policy'
    )
    text = _s3_denied(message, target)
    assert "explicitly denies" in text and "serverSideEncryption" in text


def test_plain_key_destinations_keep_their_putobject_advice() -> None:
    target = Target(
        bucket="b", region="us-east-1", access_key_id_masked="AKIA…MPLE", policy=PolicyInputs("b")
    )
    assert "They need s3:PutObject on arn:aws:s3:::b/*" in _s3_denied("Access Denied", target)
