"""Role destinations and bucket options through a real `s3dest serve` (SPEC §8, issue 14),
against moto (STS, IAM, KMS and S3, IAM enforced), on SQLite and PostgreSQL.

s3dest's own identity is a moto IAM user allowed only sts:AssumeRole, given to the server
through the standard chain (environment variables). STS goes through a recording proxy
(tests/support/sts_recorder.py) so the tests see every AssumeRole's parameters; moto
itself checks the role's trust policy, its sts:ExternalId condition included. Sessions
last 900 s (STS's minimum) and are renewed 892 s before they end, so a credential is
fresh for 8 s: the renewal is observed without waiting a quarter of an hour.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from tests.support.builders import message
from tests.support.dashboard import post_form, sign_in
from tests.support.moto_server import Credentials, S3Server
from tests.support.polling import wait_delivered, wait_until
from tests.support.roles import create_role, identity_env
from tests.support.s3dest_server import S3destEnv, S3destProcess, serve
from tests.support.sts_recorder import EncryptionGate, StsRecorder

from s3dest.devtools.moto import ACCOUNT_ID
from s3dest.s3.policy import PolicyInputs, write_policy

FRESH_SECONDS = 8  # S3DEST_ROLE_SESSION_SECONDS - S3DEST_ROLE_REFRESH_BEFORE_SECONDS


@dataclass
class Installation:
    env: S3destEnv
    server: S3destProcess
    api: httpx.Client
    project_id: str
    recorder: StsRecorder
    s3: S3Server
    identity_arn: str
    api_key: str


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def inst(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server
) -> Iterator[Installation]:
    url = None if request.param == "sqlite" else request.getfixturevalue("pg_module_database_url")
    tmp = tmp_path_factory.mktemp(f"roles-{request.param}")
    recorder = StsRecorder(s3_server.endpoint).start()
    identity, identity_arn = identity_env(s3_server, recorder.url, fresh_seconds=FRESH_SECONDS)
    env = S3destEnv(
        data_dir=tmp / "data", database_url=url, extra={"S3DEST_SECRET_KEY": "", **identity}
    )
    project_id, key = env.create_project("roles")
    server = serve(env, tmp)
    api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60)
    try:
        yield Installation(env, server, api, project_id, recorder, s3_server, identity_arn, key)
    finally:
        api.close()
        server.kill()
        recorder.stop()


def _create(inst: Installation, **fields: Any) -> dict[str, Any]:
    body = {"region": inst.s3.region, "endpointUrl": inst.s3.endpoint, **fields}
    response = inst.api.post("/v1/destinations", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _role_destination(inst: Installation, **fields: Any) -> tuple[dict[str, Any], str, str]:
    """A destination with only roleArn (the role not created yet): (it, role name, bucket)."""
    bucket = inst.s3.create_bucket()
    role = f"s3dest-writer-{uuid.uuid4().hex[:8]}"
    created = _create(
        inst,
        name=role,
        bucket=bucket,
        roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/{role}",
        **fields,
    )
    return created, role, bucket


def _send(inst: Installation, destination: str, count: int = 1) -> list[str]:
    body = {"messages": [message(i, destination) for i in range(count)]}
    response = inst.api.post("/v1/messages", json=body)
    assert response.status_code == 202, response.text
    return [a["eventId"] for a in response.json()["accepted"]]


def _test(inst: Installation, ref: str) -> dict[str, Any]:
    response = inst.api.post(f"/v1/destinations/{ref}/test")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_role_destination_delivers_with_its_external_id(inst: Installation) -> None:
    created, role, bucket = _role_destination(inst)
    assert created["accessKeyId"] is None
    assert created["externalId"].startswith("s3dest-")
    assert created["s3destPrincipal"] == inst.identity_arn
    assert created["s3destIdentityNote"] is None
    assert created["requiredActions"] == ["s3:PutObject"]
    # The documents shown are the ones the customer pastes: the role works with them.
    create_role(inst.s3, role, created["trustPolicy"], created["iamPolicy"])

    (event_id,) = _send(inst, role)
    (record,) = wait_delivered(inst.api, [event_id])
    inst.s3.client().head_object(Bucket=bucket, Key=record["key"])

    calls = inst.recorder.assume_role_calls(created["roleArn"])
    assert calls, "s3dest never called AssumeRole"
    assert {c["ExternalId"] for c in calls} == {created["externalId"]}
    assert {c["RoleSessionName"] for c in calls} == {f"s3dest-{created['id']}"}
    assert {c["DurationSeconds"] for c in calls} == {"900"}
    # Stable: the id shown later is the one sent.
    shown = inst.api.get(f"/v1/destinations/{created['id']}").json()
    assert shown["externalId"] == created["externalId"]


def test_credentials_are_cached_and_renewed_before_they_expire(inst: Installation) -> None:
    created, role, _bucket = _role_destination(inst)
    create_role(inst.s3, role, created["trustPolicy"], created["iamPolicy"])
    arn = created["roleArn"]

    # Three PUTs within the fresh window: one AssumeRole (generous margin: a batch of
    # three is delivered in well under a second here, the window is 8 s).
    wait_delivered(inst.api, _send(inst, role, 3))
    first = inst.recorder.assume_role_calls(arn)
    assert len(first) == 1, first

    def renewed() -> bool:
        wait_delivered(inst.api, _send(inst, role))
        return len(inst.recorder.assume_role_calls(arn)) >= 2

    wait_until(renewed, timeout=60, what="a renewed AssumeRole", interval=1.0)
    calls = inst.recorder.assume_role_calls(arn)
    gap = float(calls[1]["at"]) - float(calls[0]["at"])
    # Renewed once the fresh window was over (1 s of margin for clocks), long before the
    # 900 s session ended.
    assert FRESH_SECONDS - 1 <= gap < 900 - 60, gap


def test_a_role_that_does_not_trust_this_external_id(inst: Installation) -> None:
    created, role, _bucket = _role_destination(inst)
    trust = created["trustPolicy"]
    trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"] = "s3dest-another"
    create_role(inst.s3, role, trust, created["iamPolicy"])
    result = _test(inst, created["id"])
    assert result["ok"] is False
    diagnosis = result["diagnosis"]
    assert f"The role {created['roleArn']} does not let s3dest assume it" in diagnosis
    assert created["externalId"] in diagnosis and inst.identity_arn in diagnosis
    assert '"sts:ExternalId"' in diagnosis  # the trust policy to paste


def test_a_role_that_may_not_write(inst: Installation) -> None:
    created, role, bucket = _role_destination(inst)
    read_only = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}
        ],
    }
    create_role(inst.s3, role, created["trustPolicy"], read_only)
    result = _test(inst, created["id"])
    assert result["ok"] is False
    assert f"the role {created['roleArn']} is not allowed to write" in result["diagnosis"]
    assert '"s3:PutObject"' in result["diagnosis"]


def test_s3dest_without_an_identity(inst: Installation) -> None:
    created, role, _bucket = _role_destination(inst)
    create_role(inst.s3, role, created["trustPolicy"], created["iamPolicy"])
    # The CLI runs the test in its own process, here with nothing in the chain.
    bare = S3destEnv(
        data_dir=inst.env.data_dir,
        database_url=inst.env.database_url,
        extra={**inst.env.extra, "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""},
    )
    result = bare.cli("destinations", "test", "--project", inst.project_id, role, check=False)
    answer = json.loads(result.stdout)
    assert answer["ok"] is False
    assert "s3dest has no AWS identity" in answer["diagnosis"]
    assert "nothing on the role's side can fix this" in answer["diagnosis"]
    # What the API shows then: tests/unit/test_destination_access.py (one CLI process
    # fewer here; each costs seconds).


def _writer(s3: S3Server, inputs: PolicyInputs) -> Credentials:
    return s3.user_with_policy(write_policy(inputs))


def test_encryption_acl_and_tags_are_on_the_object(inst: Installation) -> None:
    s3 = inst.s3
    bucket = s3.create_bucket()
    key_arn = s3.client("kms").create_key()["KeyMetadata"]["Arn"]
    tags = {"team": "data", "source": "s3dest"}
    options = {
        "sse-s3": ({"serverSideEncryption": "AES256"}, PolicyInputs(bucket)),
        "sse-kms": (
            {"serverSideEncryption": "aws:kms", "kmsKeyId": key_arn, "bucketKeyEnabled": True},
            PolicyInputs(bucket, kms=True, kms_key_id=key_arn),
        ),
        "owned": (
            {"acl": "bucket-owner-full-control", "tags": tags},
            PolicyInputs(bucket, acl=True, tags=True),
        ),
    }
    keys: dict[str, str] = {}
    for name, (fields, inputs) in options.items():
        creds = _writer(s3, inputs)  # exactly the actions the configuration needs
        created = _create(
            inst,
            name=f"{name}-{uuid.uuid4().hex[:6]}",
            bucket=bucket,
            accessKeyId=creds.access_key_id,
            secretAccessKey=creds.secret_access_key,
            **fields,
        )
        assert created["iamPolicy"] == write_policy(inputs)
        assert _test(inst, created["id"])["ok"] is True
        (record,) = wait_delivered(inst.api, _send(inst, created["name"]))
        keys[name] = record["key"]

    admin = s3.client()
    assert admin.head_object(Bucket=bucket, Key=keys["sse-s3"])["ServerSideEncryption"] == "AES256"
    kms = admin.head_object(Bucket=bucket, Key=keys["sse-kms"])
    assert (kms["ServerSideEncryption"], kms["SSEKMSKeyId"], kms["BucketKeyEnabled"]) == (
        "aws:kms",
        key_arn,
        True,
    )
    tag_set = admin.get_object_tagging(Bucket=bucket, Key=keys["owned"])["TagSet"]
    assert {t["Key"]: t["Value"] for t in tag_set} == tags
    grants = admin.get_object_acl(Bucket=bucket, Key=keys["owned"])["Grants"]
    assert [g["Permission"] for g in grants] == ["FULL_CONTROL"]


def test_one_action_less_is_refused_with_the_policy_that_fixes_it(inst: Installation) -> None:
    s3 = inst.s3
    bucket = s3.create_bucket()
    inputs = PolicyInputs(bucket, tags=True)
    # s3:PutObjectTagging alone: moto checks s3:PutObject on the PUT (AWS also checks
    # s3:PutObjectTagging there, which moto does not).
    creds = s3.user_with_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "s3:PutObjectTagging",
                    "Resource": f"arn:aws:s3:::{bucket}/*",
                }
            ],
        }
    )
    created = _create(
        inst,
        name=f"less-{uuid.uuid4().hex[:6]}",
        bucket=bucket,
        accessKeyId=creds.access_key_id,
        secretAccessKey=creds.secret_access_key,
        tags={"team": "data"},
    )
    result = _test(inst, created["id"])
    assert result["ok"] is False
    assert json.dumps(write_policy(inputs), indent=2) in result["diagnosis"]
    assert creds.secret_access_key not in json.dumps(result)


def test_a_bucket_that_denies_unencrypted_writes(inst: Installation) -> None:
    s3 = inst.s3
    bucket = s3.create_bucket()
    gate = EncryptionGate(s3.endpoint, bucket).start()
    try:
        creds = s3.putonly_user(bucket)
        keys = {"accessKeyId": creds.access_key_id, "secretAccessKey": creds.secret_access_key}
        plain = _create(
            inst, name=f"plain-{uuid.uuid4().hex[:6]}", bucket=bucket, endpointUrl=gate.url, **keys
        )
        result = _test(inst, plain["id"])
        assert result["ok"] is False
        assert (
            f"The bucket policy of '{bucket}' explicitly denies this write" in (result["diagnosis"])
        )
        assert "set the destination's serverSideEncryption" in result["diagnosis"]

        encrypted = _create(
            inst,
            name=f"sse-{uuid.uuid4().hex[:6]}",
            bucket=bucket,
            endpointUrl=gate.url,
            serverSideEncryption="AES256",
            **keys,
        )
        assert _test(inst, encrypted["id"])["ok"] is True
        (record,) = wait_delivered(inst.api, _send(inst, encrypted["name"]))
        head = s3.client().head_object(Bucket=bucket, Key=record["key"])
        assert head["ServerSideEncryption"] == "AES256"
        assert gate.refused == 1  # the plain destination's test only
    finally:
        gate.stop()


def test_dashboard_form_creates_a_role_destination_and_shows_its_trust_policy(
    inst: Installation,
) -> None:
    bucket = inst.s3.create_bucket()
    role = f"s3dest-dash-{uuid.uuid4().hex[:8]}"
    arn = f"arn:aws:iam::{ACCOUNT_ID}:role/{role}"
    page = sign_in(inst.server.url, inst.api_key)
    try:
        created = post_form(
            page,
            "/destinations/new",
            "/destinations/new",
            name=role,
            bucket=bucket,
            region=inst.s3.region,
            endpointUrl=inst.s3.endpoint,
            roleArn=arn,
            serverSideEncryption="aws:kms",
            bucketKeyEnabled="on",
            acl="bucket-owner-full-control",
            tags="team=data\nsource=s3dest",
            storageClass="STANDARD",
            writeMode="overwrite",
            enabled="on",
        )
        assert created.status_code == 303, created.text
        shown = inst.api.get(f"/v1/destinations/{role}").json()
        assert (shown["roleArn"], shown["serverSideEncryption"], shown["bucketKeyEnabled"]) == (
            arn,
            "aws:kms",
            True,
        )
        assert shown["tags"] == {"team": "data", "source": "s3dest"}
        edit = page.get(f"/destinations/{shown['id']}/edit")
        assert edit.status_code == 200
        html = edit.text
        assert shown["externalId"] in html and inst.identity_arn in html
        assert "sts:ExternalId" in html  # the trust policy
        for action in shown["requiredActions"]:
            assert action in html
        assert shown["requiredActions"] == [
            "s3:PutObject",
            "s3:PutObjectAcl",
            "s3:PutObjectTagging",
            "kms:GenerateDataKey",
            "kms:Decrypt",
        ]
        # A bad tag line is refused naming the field, and nothing is saved.
        refused = post_form(
            page,
            "/destinations/new",
            "/destinations/new",
            name=f"{role}-2",
            bucket=bucket,
            region=inst.s3.region,
            roleArn=arn,
            tags="no equals sign",
            storageClass="STANDARD",
            writeMode="overwrite",
        )
        assert refused.status_code == 422
        assert "line 1 is not key=value" in refused.text
    finally:
        page.close()
