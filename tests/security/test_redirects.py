"""No redirect is ever followed (SPEC §7): an endpoint that answers 301/302/303/307/308
with a Location elsewhere gets its answer diagnosed, and the place it points at is never
contacted — neither on the direct path (an allow-listed endpoint, over REST) nor through
the egress proxy (a name, in process), nor by the region probe after a 301.

obstore (object_store) builds its reqwest client without redirects, and httpx follows none
unless asked; these tests hold s3dest to that. A redirect to a refused address would
otherwise carry the signed PUT (and the session token) past the endpoint policy.

SQLite only: what is tested is the request path, which no database takes part in.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from s3dest.errors import DeliveryError
from s3dest.s3 import egress
from s3dest.s3.egress import SETTING, EgressPolicy
from s3dest.s3.writer import ObjectRequest, S3Destination, put_object
from tests.support.builders import EXAMPLE_ACCESS_KEY_ID, EXAMPLE_SECRET
from tests.support.installs import installed
from tests.support.listeners import ReplyServer

REDIRECTS = (301, 302, 303, 307, 308)


@pytest.fixture
def landing() -> Iterator[ReplyServer]:
    """Where every redirect points: it must see no connection at all."""
    with ReplyServer(200, headers=[("ETag", '"landed"')]) as server:
        yield server


def test_redirects_are_not_followed_over_rest(tmp_path: Path, landing: ReplyServer) -> None:
    with installed(tmp_path, None, allowed="127.0.0.1") as inst:
        for status in REDIRECTS:
            location = f"{landing.endpoint}/tenant-bucket/elsewhere"
            with ReplyServer(status, headers=[("Location", location)]) as endpoint:
                created = inst.api.post(
                    "/v1/destinations",
                    json={
                        "name": f"redirect{status}",
                        "bucket": "tenant-bucket",
                        "region": "us-east-1",
                        "accessKeyId": EXAMPLE_ACCESS_KEY_ID,
                        "secretAccessKey": EXAMPLE_SECRET,
                        "endpointUrl": endpoint.endpoint,
                    },
                )
                assert created.status_code == 201, created.text
                result = inst.api.post(f"/v1/destinations/{created.json()['id']}/test").json()
                assert result["ok"] is False, (status, result)
                assert result["etag"] is None
                assert endpoint.requests, status
                assert landing.accepted == 0, status


@pytest.fixture
def proxied() -> Iterator[None]:
    """Names resolve to 127.0.0.1, allowed by CIDR: their connections go through the
    egress proxy."""
    egress.configure(
        EgressPolicy.from_setting("127.0.0.1/32", resolver=lambda host, port: ["127.0.0.1"])
    )
    try:
        yield
    finally:
        egress.configure(EgressPolicy.from_setting(os.environ.get(SETTING, "")))


@pytest.mark.parametrize("status", REDIRECTS)
def test_redirects_are_not_followed_through_the_proxy(
    proxied: None, landing: ReplyServer, status: int
) -> None:
    location = f"http://127.0.0.1:{landing.port}/tenant-bucket/k"
    with ReplyServer(status, headers=[("Location", location)]) as endpoint:
        dest = S3Destination(
            bucket="tenant-bucket",
            region="us-east-1",
            access_key_id=EXAMPLE_ACCESS_KEY_ID,
            secret_access_key=EXAMPLE_SECRET,
            session_token="FAKE-SESSION-TOKEN",
            endpoint_url=f"http://redirector:{endpoint.port}",
            request_timeout_s=10,
        )
        assert egress.current().route("redirector") is egress.Route.PROXY
        with pytest.raises(DeliveryError):
            put_object(dest, ObjectRequest("k", b"{}", {}, "e"))
        assert ("PUT", "/tenant-bucket/k") in endpoint.requests
    assert landing.accepted == 0
