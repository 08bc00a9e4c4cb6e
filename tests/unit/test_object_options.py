"""SPEC §8's options as the writer hands them to obstore (small PUTs) and to botocore
(CreateMultipartUpload): the same encryption, ACL and tags on both paths."""

from __future__ import annotations

from s3dest.s3 import object_options
from s3dest.s3.writer import ObjectRequest, S3Destination, multipart_create_args

DEST = S3Destination(
    bucket="b",
    region="us-east-1",
    access_key_id="AKIAIOSFODNN7EXAMPLE",
    secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    server_side_encryption="aws:kms",
    kms_key_id="alias/k",
    bucket_key_enabled=True,
    acl="bucket-owner-full-control",
    tags=(("source", "s3dest"), ("team", "data ops")),
)


def test_small_puts_carry_the_options() -> None:
    config = object_options.obstore_config(DEST)
    assert config["server_side_encryption"] == "aws:kms"
    assert config["sse_kms_key_id"] == "alias/k"
    assert config["sse_bucket_key_enabled"] is True
    assert config["access_key_id"] == "AKIAIOSFODNN7EXAMPLE"
    assert "credential_provider" not in config
    assert object_options.obstore_headers(DEST) == {"x-amz-acl": "bucket-owner-full-control"}


def test_multipart_uploads_carry_the_same_options() -> None:
    request = ObjectRequest(key="k", body=b"", metadata={"event-id": "e"}, event_id="e")
    args = multipart_create_args(DEST, request)
    assert args["ServerSideEncryption"] == "aws:kms"
    assert (args["SSEKMSKeyId"], args["BucketKeyEnabled"]) == ("alias/k", True)
    assert args["ACL"] == "bucket-owner-full-control"
    assert args["Tagging"] == "source=s3dest&team=data+ops"
    assert args["Metadata"] == {"event-id": "e"}


def test_a_plain_destination_sends_none_of_them() -> None:
    plain = S3Destination("b", "us-east-1", "AKIAIOSFODNN7EXAMPLE", "s" * 40)
    assert object_options.obstore_headers(plain) == {}
    assert object_options.multipart_extras(plain) == {}
    assert set(object_options.obstore_config(plain)) == {"access_key_id", "secret_access_key"}
