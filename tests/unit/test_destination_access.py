"""SPEC §8 rules: roleArn instead of keys (exactly one), encryption, canned ACL, tags;
the IAM actions a configuration needs; what the API shows of a role destination."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import pytest

from s3dest.destinations.rules import ValidatedDestination, validate_destination
from s3dest.destinations.schemas import DestinationPublic, parse_create, parse_update
from s3dest.errors import InvalidInput
from s3dest.s3 import credentials
from s3dest.s3.policy import PolicyInputs, required_actions, trust_policy, write_policy
from s3dest.store.destinations import DestinationRow

ROLE = "arn:aws:iam::123456789012:role/s3dest-writer"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def _allow(host: str, port: int) -> None:
    return None


def _no_warnings(template: str) -> list[str]:
    return []


def base(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "name": "d",
        "bucket": "ampersand-integration-bucket",
        "region": "us-west-2",
        "roleArn": ROLE,
    }
    fields.update(overrides)
    return {k: v for k, v in fields.items() if v is not None}


def validate(**overrides: Any) -> ValidatedDestination:
    return validate_destination(
        base(**overrides), check_endpoint=_allow, check_key_template=_no_warnings
    )


def errors_of(**overrides: Any) -> dict[str, str]:
    with pytest.raises(InvalidInput) as info:
        validate(**overrides)
    return info.value.fields


def test_role_alone_is_a_complete_destination() -> None:
    checked = validate()
    assert checked.role_arn == ROLE
    assert (checked.access_key_id, checked.secret_access_key, checked.session_token) == (
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::123456789012:role/path/to/s3dest.writer@x",
        "arn:aws-us-gov:iam::123456789012:role/w",
        "arn:aws-cn:iam::123456789012:role/w",
    ],
)
def test_role_arns_of_every_partition(arn: str) -> None:
    region = {"aws-us-gov": "us-gov-west-1", "aws-cn": "cn-north-1"}.get(arn.split(":")[1])
    assert validate(roleArn=arn, region=region or "us-west-2").role_arn == arn


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::12345678901:role/w",  # 11 digits
        "arn:aws:iam::123456789012:user/w",  # a user, not a role
        "arn:aws:sts::123456789012:assumed-role/w/s",
        "arn:aws:iam::123456789012:role/w x",
        "arn:aws:iam::123456789012:role/*",
        "arn:aws-xx:iam::123456789012:role/w",
        "arn:aws:iam::123456789012:role/" + "w" * 65,
        "arn:aws:iam::123456789012:role/w\nx",
    ],
)
def test_bad_role_arns_name_the_field_and_the_fix(arn: str) -> None:
    message = errors_of(roleArn=arn)["roleArn"]
    assert "arn:aws:iam::<12-digit account id>:role/" in message
    assert arn.strip() not in message  # nothing of the value is repeated


def test_role_of_another_partition_than_the_region() -> None:
    arn = "arn:aws-cn:iam::123456789012:role/w"
    assert "'aws-cn' partition" in errors_of(roleArn=arn)["roleArn"]


def test_role_and_keys_together_are_refused() -> None:
    fields = errors_of(accessKeyId="AKIAIOSFODNN7EXAMPLE", secretAccessKey=SECRET)
    assert "give one" in fields["roleArn"]
    assert SECRET not in json.dumps(fields)


def test_neither_role_nor_keys_asks_for_either() -> None:
    fields = errors_of(roleArn=None)
    assert "or give roleArn instead of keys" in fields["accessKeyId"]


def test_switching_a_key_destination_to_a_role_clears_the_keys_in_the_same_update() -> None:
    update = parse_update({"roleArn": ROLE, "accessKeyId": None, "secretAccessKey": None})
    assert update.changes() == {"roleArn": ROLE, "accessKeyId": None, "secretAccessKey": None}


def test_external_id_cannot_be_given() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_create({**base(), "externalId": "mine"})
    assert "chosen by s3dest" in info.value.fields["externalId"]


@pytest.mark.parametrize(
    ("given", "canonical"),
    [("AES256", "AES256"), ("sse-s3", "AES256"), ("aws:kms", "aws:kms"), ("SSE-KMS", "aws:kms")],
)
def test_server_side_encryption_values(given: str, canonical: str) -> None:
    assert validate(serverSideEncryption=given).server_side_encryption == canonical


def test_encryption_rules() -> None:
    assert "'AES256'" in errors_of(serverSideEncryption="DES")["serverSideEncryption"]
    assert "SSE-KMS only" in errors_of(kmsKeyId="alias/k")["kmsKeyId"]
    assert (
        "SSE-KMS only"
        in errors_of(serverSideEncryption="AES256", bucketKeyEnabled=True)["bucketKeyEnabled"]
    )
    assert (
        "must be a KMS key id"
        in errors_of(serverSideEncryption="aws:kms", kmsKeyId="k k")["kmsKeyId"]
    )
    # An S3-compatible store's key server names keys freely (RGW: Vault, KMIP, testing).
    custom = {"endpointUrl": "https://s3.example.net", "serverSideEncryption": "aws:kms"}
    assert validate(**custom, kmsKeyId="testkey-1").kms_key_id == "testkey-1"
    key = "arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    checked = validate(serverSideEncryption="aws:kms", kmsKeyId=key, bucketKeyEnabled=True)
    assert (checked.kms_key_id, checked.bucket_key_enabled) == (key, True)


def test_acl_rules() -> None:
    assert validate(acl="Bucket-Owner-Full-Control").acl == "bucket-owner-full-control"
    assert "does not write public objects" in errors_of(acl="public-read")["acl"]
    assert "must be a canned ACL" in errors_of(acl="owner")["acl"]


def test_tag_rules() -> None:
    assert validate(tags={"team": "data", "src": "s3dest v1/a+b=c"}).tags == {
        "team": "data",
        "src": "s3dest v1/a+b=c",
    }
    assert validate(tags={}).tags is None
    assert "at most 10" in errors_of(tags={f"k{i}": "v" for i in range(11)})["tags"]
    assert "reserves" in errors_of(tags={"aws:x": "v"})["tags"]
    assert "characters S3 does not allow" in errors_of(tags={"k": "a&b"})["tags"]
    assert "1–128" in errors_of(tags={"": "v"})["tags"]
    assert "at most 256" in errors_of(tags={"k": "v" * 257})["tags"]
    with pytest.raises(InvalidInput) as info:
        parse_create({**base(), "tags": {"k": 3}})
    assert info.value.fields["tags.k"] == "tags.k must be a string."


@pytest.mark.parametrize(
    ("inputs", "actions"),
    [
        (PolicyInputs("b"), ["s3:PutObject"]),
        (PolicyInputs("b", acl=True), ["s3:PutObject", "s3:PutObjectAcl"]),
        (PolicyInputs("b", tags=True), ["s3:PutObject", "s3:PutObjectTagging"]),
        (PolicyInputs("b", kms=True), ["s3:PutObject", "kms:GenerateDataKey", "kms:Decrypt"]),
        (
            PolicyInputs("b", acl=True, tags=True, kms=True),
            [
                "s3:PutObject",
                "s3:PutObjectAcl",
                "s3:PutObjectTagging",
                "kms:GenerateDataKey",
                "kms:Decrypt",
            ],
        ),
    ],
)
def test_required_actions_are_exactly_what_each_option_adds(
    inputs: PolicyInputs, actions: list[str]
) -> None:
    assert required_actions(inputs) == actions
    policy = write_policy(inputs)
    granted = [
        a
        for statement in policy["Statement"]
        for a in (
            [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        )
    ]
    assert granted == actions
    assert policy["Statement"][0]["Resource"] == "arn:aws:s3:::b/*"


def test_kms_grant_is_scoped_to_a_key_arn_when_given() -> None:
    # An S3-compatible store's key server names keys freely (RGW: Vault, KMIP, testing).
    custom = {"endpointUrl": "https://s3.example.net", "serverSideEncryption": "aws:kms"}
    assert validate(**custom, kmsKeyId="testkey-1").kms_key_id == "testkey-1"
    key = "arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    policy = write_policy(PolicyInputs("b", kms=True, kms_key_id=key))
    assert policy["Statement"][1]["Resource"] == key
    assert (
        write_policy(PolicyInputs("b", kms=True, kms_key_id="alias/x"))["Statement"][1]["Resource"]
        == "*"
    )


def test_trust_policy_names_the_principal_and_requires_the_external_id() -> None:
    policy = trust_policy("arn:aws:iam::111122223333:role/s3dest", "s3dest-abc")
    (statement,) = policy["Statement"]
    assert statement["Principal"] == {"AWS": "arn:aws:iam::111122223333:role/s3dest"}
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": "s3dest-abc"}}


def test_an_assumed_role_session_is_trusted_as_its_role() -> None:
    session = credentials.Identity(
        arn="arn:aws:sts::111122223333:assumed-role/s3dest-prod/i-0abc", account="111122223333"
    )
    assert session.principal_arn == "arn:aws:iam::111122223333:role/s3dest-prod"
    user = credentials.Identity(arn="arn:aws:iam::111122223333:user/s3dest", account="1")
    assert user.principal_arn == "arn:aws:iam::111122223333:user/s3dest"


def _row(checked: ValidatedDestination, external_id: str) -> DestinationRow:
    fields = asdict(checked)
    for name in ("secret_access_key", "session_token", "warnings"):
        del fields[name]
    tags = fields.pop("tags")
    del fields["batch"]  # asdict made it a dict; the row holds its JSON
    return DestinationRow(
        id="d-1",
        project_id="p-1",
        **fields,
        tags_json=json.dumps(tags) if tags else None,
        batch_json=checked.batch.to_json() if checked.batch else None,
        external_id=external_id,
        secret_access_key_enc=None,
        session_token_enc=None,
        failing_since=None,
        diagnosis=None,
        last_error_code=None,
        probe_attempts=0,
        next_probe_at=None,
        verified_at=None,
        version=1,
        created_at=0.0,
        updated_at=0.0,
    )


def test_public_view_of_a_role_destination_without_an_s3dest_identity(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    credentials.configure(credentials.StsConfig())  # forget any cached identity or session
    monkeypatch.setattr(credentials, "_session", None)
    checked = validate(acl="bucket-owner-full-control", tags={"team": "data"})
    public = DestinationPublic.from_row(_row(checked, "s3dest-0123")).model_dump()
    assert public["accessKeyId"] is None
    assert public["externalId"] == "s3dest-0123"
    assert public["s3destPrincipal"] is None
    assert "s3dest has no AWS identity" in public["s3destIdentityNote"]
    condition = public["trustPolicy"]["Statement"][0]["Condition"]
    assert condition == {"StringEquals": {"sts:ExternalId": "s3dest-0123"}}
    assert public["requiredActions"] == ["s3:PutObject", "s3:PutObjectAcl", "s3:PutObjectTagging"]
    assert (public["acl"], public["tags"]) == ("bucket-owner-full-control", {"team": "data"})
