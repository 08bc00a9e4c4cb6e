"""s3dest against a second, real S3 implementation: Ceph RGW (tests/support/rgw.py).

moto is a model of S3; RGW is an independent server (its own signature checks, metadata
handling and keep-alive connections). Writes use a write-only subuser, reads the admin key.
The cluster is the session's `rgw_server` (one boot, ~11 s); under CI a missing Ceph fails.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from botocore.exceptions import ClientError
from tests.support.polling import wait_until
from tests.support.rgw_config import KMS_KEY_IDS
from tests.support.rgw_server import RgwServer
from tests.support.s3dest_server import S3destEnv, S3destProcess, serve

from s3dest.client import Client
from s3dest.devtools.moto import Credentials
from s3dest.s3.writer import ObjectRequest, S3Destination, put_object


@pytest.fixture(scope="module")
def putonly(rgw_server: RgwServer) -> Credentials:
    return rgw_server.putonly_user(rgw_server.bucket)


def _metadata(event_id: str) -> dict[str, str]:
    """The nine headers s3dest writes, lower-case, two of them empty (as for a read event)."""
    return {
        "projectid": "9482e676-4874-43a4-beea-fa8081d13a07",
        "installationid": "085353b1-07f1-4209-b471-7e028c0a68c8",
        "connectionid": "",
        "destinationid": "5f0b2a7c-6c1e-7c3a-9d1e-0199e0a26c1e",
        "operationid": "op-1",
        "objectname": "contacts",
        "event-id": event_id,
        "timestamp": "1760410739",
        "topic": "",
    }


def test_writer_put_reads_back_body_metadata_and_content_type(
    rgw_server: RgwServer, putonly: Credentials
) -> None:
    event_id = str(uuid.uuid4())
    # The default key template's shape, ':' included (it must be signed as RGW reads it).
    key = f"contacts/2025-10-14T02:58:59.323405308Z_{event_id}.json"
    body = orjson.dumps({"data": {"id": event_id, "name": "Zoë", "pad": "x" * 2000}})
    request = ObjectRequest(key=key, body=body, metadata=_metadata(event_id), event_id=event_id)
    dest = S3Destination(
        bucket=rgw_server.bucket,
        region=rgw_server.region,
        access_key_id=putonly.access_key_id,
        secret_access_key=putonly.secret_access_key,
        endpoint_url=rgw_server.endpoint,
    )
    outcome = put_object(dest, request)
    assert outcome.etag == f'"{hashlib.md5(body).hexdigest()}"'
    assert not outcome.already_present

    stored = rgw_server.client().get_object(Bucket=rgw_server.bucket, Key=key)
    assert stored["Body"].read() == body
    assert stored["ContentType"] == "application/json"
    assert stored["ContentLength"] == len(body)
    assert stored["ETag"] == outcome.etag
    assert stored["Metadata"] == request.metadata  # all nine, the empty ones kept as ""
    headers = stored["ResponseMetadata"]["HTTPHeaders"]
    assert {h for h in headers if h.startswith("x-amz-meta-")} == {
        f"x-amz-meta-{k}" for k in request.metadata
    }
    # The writer's key really is write-only: it cannot read back what it wrote.
    with pytest.raises(ClientError) as denied:
        rgw_server.client(credentials=putonly, max_attempts=1).get_object(
            Bucket=rgw_server.bucket, Key=key
        )
    assert denied.value.response["Error"]["Code"] == "AccessDenied"


@pytest.fixture
def s3dest_on_rgw(tmp_path: Path) -> Iterator[tuple[S3destProcess, str]]:
    env = S3destEnv(data_dir=tmp_path / "data", extra={"S3DEST_SECRET_KEY": ""})
    env.data_dir.mkdir(parents=True)
    _, api_key = env.create_project("rgw")
    process = serve(env, tmp_path)
    try:
        yield process, api_key
    finally:
        process.kill()


def _message(n: int) -> dict[str, Any]:
    return {
        "destination": "rgw",
        "action": "read",
        "provider": "salesforce",
        "installationId": "inst-1",
        "groupRef": "group-1",
        "objectName": "account",
        "result": [{"fields": {"id": str(n), "name": f"Account {n}", "pad": "x" * 200}}],
    }


def _create_destination(
    client: Client, rgw: RgwServer, bucket: str, keys: Credentials
) -> dict[str, Any]:
    """The destination "rgw" (the name `_message` routes to), with static keys."""
    return client.create_destination(
        name="rgw",
        bucket=bucket,
        region=rgw.region,
        accessKeyId=keys.access_key_id,
        secretAccessKey=keys.secret_access_key,
        endpointUrl=rgw.endpoint,
    )


def test_serve_delivers_messages_to_rgw(
    rgw_server: RgwServer, putonly: Credentials, s3dest_on_rgw: tuple[S3destProcess, str]
) -> None:
    server, api_key = s3dest_on_rgw
    bucket = rgw_server.create_bucket()
    with server.client(api_key) as client:
        _create_destination(client, rgw_server, bucket, putonly)
        sent = [_message(n) for n in range(5)]
        ids = [a["eventId"] for a in client.send_batch(sent)]
        deadline = time.monotonic() + 120
        while True:
            got = [client.message(event_id) for event_id in ids]
            if all(r["state"] == "delivered" for r in got):
                break
            assert time.monotonic() < deadline, [(r["state"], r["lastError"]) for r in got]
            assert not [r for r in got if r["state"] in ("parked", "held")], got
            time.sleep(0.2)

    admin = rgw_server.client()
    listed = admin.list_objects_v2(Bucket=bucket)
    assert sorted(o["Key"] for o in listed["Contents"]) == sorted(r["key"] for r in got)
    for event_id, message, record in zip(ids, sent, got, strict=True):
        assert record["bucket"] == bucket and event_id in record["key"]
        stored = admin.get_object(Bucket=bucket, Key=record["key"])
        data = orjson.loads(stored["Body"].read())["data"]
        assert data["result"] == message["result"]
        assert stored["ContentType"] == "application/json"
        assert stored["ETag"] == record["etag"]
        assert stored["Metadata"]["event-id"] == event_id
        assert stored["Metadata"]["objectname"] == "account"
        assert stored["Metadata"]["installationid"] == "inst-1"


def _deny_unencrypted_writes(rgw: RgwServer, bucket: str) -> None:
    """Add AWS's documented pair of Deny statements to the bucket's policy. RGW puts the
    request's x-amz-server-side-encryption header into the policy's environment as
    s3:x-amz-server-side-encryption on PutObject (not on CreateMultipartUpload: there the
    key is absent, so the Null statement denies every multipart upload, encrypted or not),
    and a StringNotEquals on an absent key does not match on RGW (it does on AWS), hence
    the Null statement for PUTs without the header."""
    admin = rgw.client()
    policy = orjson.loads(admin.get_bucket_policy(Bucket=bucket)["Policy"])
    resource = f"arn:aws:s3:::{bucket}/*"
    policy["Statement"] += [
        {
            "Sid": "DenyIncorrectEncryptionHeader",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": resource,
            "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}},
        },
        {
            "Sid": "DenyUnEncryptedObjectUploads",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": resource,
            "Condition": {"Null": {"s3:x-amz-server-side-encryption": "true"}},
        },
    ]
    admin.put_bucket_policy(Bucket=bucket, Policy=orjson.dumps(policy).decode())


def test_a_bucket_policy_that_denies_unencrypted_writes(
    rgw_server: RgwServer, s3dest_on_rgw: tuple[S3destProcess, str]
) -> None:
    """SPEC §8 on a real policy engine (moto does not evaluate bucket-policy conditions):
    a plain destination is refused with a diagnosis naming the bucket policy and
    serverSideEncryption; the same destination with SSE-KMS (RGW's testing key server,
    tests/support/rgw.py) delivers what was held."""
    server, api_key = s3dest_on_rgw
    bucket = rgw_server.create_bucket()
    writer = rgw_server.putobject_only_user(bucket)  # IAM: s3:PutObject on the bucket only
    _deny_unencrypted_writes(rgw_server, bucket)
    key_id = KMS_KEY_IDS[0]
    with server.client(api_key) as client:
        dest = _create_destination(client, rgw_server, bucket, writer)
        tested = client.test_destination(dest["id"])
        assert tested["ok"] is False
        assert "the bucket policy denies the write with an explicit Deny" in tested["diagnosis"]
        assert "set the destination's serverSideEncryption" in tested["diagnosis"]

        ids = [a["eventId"] for a in client.send_batch([_message(n) for n in range(3)])]
        wait_until(lambda: {client.message(i)["state"] for i in ids} == {"held"}, 60, "held")
        shown = client.destination(dest["id"])
        assert shown["status"] == "failing"
        assert "serverSideEncryption" in shown["diagnosis"]

        client.update_destination(dest["id"], serverSideEncryption="aws:kms", kmsKeyId=key_id)
        assert client.test_destination(dest["id"])["ok"] is True
        wait_until(
            lambda: {client.message(i)["state"] for i in ids} == {"delivered"},
            120,
            "delivered once encrypted",
        )
        records = [client.message(i) for i in ids]

    admin = rgw_server.client()
    for record in records:
        head = admin.head_object(Bucket=bucket, Key=record["key"])
        assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", key_id)
        assert head["ETag"] == record["etag"]
    # Nothing unencrypted got in: the held attempts and the first test were all refused.
    listed = admin.list_objects_v2(Bucket=bucket)["Contents"]
    for obj in listed:
        assert admin.head_object(Bucket=bucket, Key=obj["Key"])["ServerSideEncryption"] == (
            "aws:kms"
        )
