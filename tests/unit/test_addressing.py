"""Where the writer sends a destination's requests (SPEC §8 "every partition"): the
partition's own S3 host, virtual-hosted on AWS, path-style on a custom endpoint — for the
obstore client of small objects and the botocore client of multipart uploads alike."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from s3dest.s3 import boto_client, writer
from s3dest.s3.writer import S3Destination


def dest(bucket: str = "acme-data", region: str = "us-east-1", **extra: Any) -> S3Destination:
    return S3Destination(
        bucket=bucket,
        region=region,
        access_key_id="AKIAIOSFODNN7EXAMPLE",
        secret_access_key="made/up/secret/for/addressing/tests/0000",
        **extra,
    )


@pytest.mark.parametrize(
    ("region", "host"),
    [
        ("us-east-1", "acme-data.s3.us-east-1.amazonaws.com"),
        ("eu-central-1", "acme-data.s3.eu-central-1.amazonaws.com"),
        ("us-gov-west-1", "acme-data.s3.us-gov-west-1.amazonaws.com"),
        ("cn-north-1", "acme-data.s3.cn-north-1.amazonaws.com.cn"),
    ],
)
def test_small_objects_go_virtual_hosted_to_the_partitions_host(region: str, host: str) -> None:
    assert writer._addressing(dest(region=region)) == {
        "endpoint": f"https://{host}",
        "virtual_hosted_style_request": True,
    }


def test_a_dotted_bucket_and_a_custom_endpoint_go_path_style() -> None:
    assert writer._addressing(dest(bucket="acme.data", region="cn-north-1")) == {
        "endpoint": "https://s3.cn-north-1.amazonaws.com.cn",
        "virtual_hosted_style_request": False,
    }
    custom = dest(endpoint_url="https://minio.example.com/", region="mars-1")
    assert writer._addressing(custom) == {
        "endpoint": "https://minio.example.com",
        "virtual_hosted_style_request": False,
    }


@pytest.mark.parametrize(
    ("destination", "url"),
    [
        (dest(region="cn-north-1"), "https://acme-data.s3.cn-north-1.amazonaws.com.cn/big.json"),
        (dest(region="us-gov-west-1"), "https://acme-data.s3.us-gov-west-1.amazonaws.com/big.json"),
        # us-east-1's global host, botocore's choice
        (dest(bucket="acme.data"), "https://s3.amazonaws.com/acme.data/big.json"),
        (
            dest(endpoint_url="https://minio.example.com", region="mars-1"),
            "https://minio.example.com/acme-data/big.json",
        ),
    ],
)
def test_multipart_requests_go_to_the_same_place(destination: S3Destination, url: str) -> None:
    client = boto_client.client_for(writer.multipart_client_spec(destination, None, 4))
    sent: list[str] = []

    def capture(request: Any, **_: Any) -> AWSResponse:
        sent.append(request.url.split("?", 1)[0])
        return AWSResponse(request.url, 500, {}, None)  # nothing leaves the machine

    client.meta.events.register_first("before-send.s3", capture)
    try:
        with pytest.raises(Exception):  # noqa: B017 - the canned 500; only the URL matters
            client.create_multipart_upload(Bucket=destination.bucket, Key="big.json")
    finally:
        client.meta.events.unregister("before-send.s3", capture)
    assert sent == [url]
