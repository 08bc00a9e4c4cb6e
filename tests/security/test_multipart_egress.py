"""Multipart uploads (botocore's client, s3/multipart.py) take the same route as small PUTs
(SPEC §7): through the egress proxy for a name that is not AWS's, checked on every
connection. Names are resolved by an injected resolver, never by DNS; only 127.0.0.1 is
connected to."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import pytest

from s3dest.errors import DestinationError
from s3dest.s3 import egress
from s3dest.s3.egress import SETTING, EgressPolicy
from s3dest.s3.egress_proxy import shared_proxy
from s3dest.s3.multipart import MultipartOptions
from s3dest.s3.writer import ObjectRequest, S3Destination, prepare_put, send_put
from tests.support.moto_server import S3Server

PART = 64 * 1024  # the test servers accept parts this small (tests/conftest.py)


class FakeDns:
    def __init__(self) -> None:
        self.answers: dict[str, list[str]] = {}

    def __call__(self, host: str, port: int) -> Sequence[str]:
        if host not in self.answers:
            raise OSError(-2, "Name or service not known")
        return self.answers[host]


@pytest.fixture
def dns() -> Iterator[FakeDns]:
    fake = FakeDns()
    egress.configure(EgressPolicy.from_setting("127.0.0.1/32", resolver=fake))
    try:
        yield fake
    finally:
        egress.configure(EgressPolicy.from_setting(os.environ.get(SETTING, "")))


def test_a_multipart_upload_goes_through_the_egress_proxy_and_is_checked_there(
    dns: FakeDns, s3_server: S3Server, bucket: str
) -> None:
    # A dotless name inside the allow-listed CIDR: proxied (see test_rebinding).
    dns.answers["s3store"] = ["127.0.0.1"]
    creds = s3_server.putonly_user(bucket)
    dest = S3Destination(
        bucket=bucket,
        region=s3_server.region,
        access_key_id=creds.access_key_id,
        secret_access_key=creds.secret_access_key,
        endpoint_url=f"http://s3store:{s3_server.port}",
        request_timeout_s=10,
    )
    options = MultipartOptions(part_size=PART)
    body = [b"z" * PART] * 3
    before = shared_proxy().connections
    done = send_put(prepare_put(dest, ObjectRequest("big/1.json", iter(body), {}, "e1")), options)
    assert done.etag and done.etag.endswith('-3"')
    assert shared_proxy().connections > before  # it went through the proxy
    got = s3_server.client().get_object(Bucket=bucket, Key="big/1.json")["Body"].read()
    assert got == b"".join(body)

    dns.answers["s3store"] = ["127.0.0.2"]  # not in the allow-list any more
    egress.configure(EgressPolicy.from_setting("127.0.0.1/32", resolver=dns))  # new clients
    with pytest.raises(DestinationError, match=r"resolves to 127\.0\.0\.2, a loopback"):
        send_put(prepare_put(dest, ObjectRequest("big/2.json", iter(body), {}, "e2")), options)
