"""What the writer sends for SPEC §8's bucket options, on the wire (moto behind a loopback
proxy that records each request's headers): x-amz-acl, x-amz-tagging and the
server-side-encryption headers arrive, and every one of them is signed (AWS refuses a
request with an unsigned x-amz-* header). object_store has no ACL attribute, so x-amz-acl
rides on the client's default headers: this test is what shows those are signed too."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from tests.support.moto_server import S3Server
from tests.support.sts_recorder import Proxy

from s3dest.s3.writer import ObjectRequest, S3Destination, put_object

_SIGNED = re.compile(r"SignedHeaders=([^,\s]+)")


class _HeaderRecorder(Proxy):
    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.puts: list[dict[str, str]] = []

    def record(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        if method == "PUT":
            with self.lock:
                self.puts.append({k.lower(): v for k, v in headers.items()})


@pytest.fixture
def recorder(s3_server: S3Server) -> Iterator[_HeaderRecorder]:
    proxy = _HeaderRecorder(s3_server.endpoint).start()
    try:
        yield proxy
    finally:
        proxy.stop()


def test_acl_tags_and_kms_headers_are_sent_signed(
    s3_server: S3Server, recorder: _HeaderRecorder
) -> None:
    bucket = s3_server.create_bucket()
    key_arn = s3_server.client("kms").create_key()["KeyMetadata"]["Arn"]
    creds = s3_server.putonly_user(bucket)
    dest = S3Destination(
        bucket=bucket,
        region=s3_server.region,
        access_key_id=creds.access_key_id,
        secret_access_key=creds.secret_access_key,
        endpoint_url=recorder.url,
        server_side_encryption="aws:kms",
        kms_key_id=key_arn,
        bucket_key_enabled=True,
        acl="bucket-owner-full-control",
        tags=(("source", "s3dest"), ("team", "data ops")),
    )
    key = f"wire/{uuid.uuid4().hex}.json"
    put_object(dest, ObjectRequest(key=key, body=b"{}", metadata={}, event_id="e"))

    (sent,) = recorder.puts
    assert sent["x-amz-acl"] == "bucket-owner-full-control"
    assert sent["x-amz-server-side-encryption"] == "aws:kms"
    assert sent["x-amz-server-side-encryption-aws-kms-key-id"] == key_arn
    assert sent["x-amz-server-side-encryption-bucket-key-enabled"] == "true"
    assert set(sent["x-amz-tagging"].split("&")) == {"source=s3dest", "team=data+ops"}
    found = _SIGNED.search(sent["authorization"])
    assert found is not None
    signed = set(found.group(1).split(";"))
    assert {
        "x-amz-acl",
        "x-amz-tagging",
        "x-amz-server-side-encryption",
        "x-amz-server-side-encryption-aws-kms-key-id",
        "x-amz-server-side-encryption-bucket-key-enabled",
    } <= signed

    admin = s3_server.client()
    tags = admin.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
    assert {t["Key"]: t["Value"] for t in tags} == {"source": "s3dest", "team": "data ops"}
    assert admin.head_object(Bucket=bucket, Key=key)["SSEKMSKeyId"] == key_arn
