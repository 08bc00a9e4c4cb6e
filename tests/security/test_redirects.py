"""No redirect is followed for a tenant's endpoint (SPEC §7): an endpoint that answers
301/302/303/307/308 with a Location elsewhere gets "redirect not followed" (or, for 301,
the region diagnosis), and the place it points at is never contacted.

Found while writing these: obstore 0.12 does not expose reqwest's redirect policy, and
reqwest follows a 303 to a PUT (and a 301/302/303 to a POST, as multipart uploads send)
as a GET that keeps x-amz-security-token — before the fix the connection test then said
"ok" with the landing server's ETag. So every endpoint a tenant controls goes through the
egress proxy, where such a follow-up arrives without the client's proxy credentials and is
refused (its target would be checked anyway); only AWS's S3 endpoints and what the
operator allow-listed are contacted directly, and for those reqwest's 303 rule remains
(`test_direct_path_follows_no_redirect_but_303` shows which).

SQLite only: what is tested is the request path, which no database takes part in.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from s3dest.errors import DeliveryError
from s3dest.s3 import egress
from s3dest.s3.egress import SETTING, EgressPolicy
from s3dest.s3.writer import ObjectRequest, S3Destination, put_object
from tests.support.builders import EXAMPLE_ACCESS_KEY_ID, EXAMPLE_SECRET, example_destination_fields
from tests.support.installs import Installation, installed
from tests.support.listeners import ReplyServer

REDIRECTS = (301, 302, 303, 307, 308)


@pytest.fixture
def landing() -> Iterator[ReplyServer]:
    """Where every redirect points: it must see no connection at all."""
    with ReplyServer(200, headers=[("ETag", '"landed"')]) as server:
        yield server


def _connection_test(inst: Installation, name: str, endpoint: str) -> dict[str, Any]:
    created = inst.api.post(
        "/v1/destinations",
        json=example_destination_fields(
            name, bucket="tenant-bucket", region="us-east-1", endpointUrl=endpoint
        ),
    )
    assert created.status_code == 201, created.text
    result: dict[str, Any] = inst.api.post(f"/v1/destinations/{created.json()['id']}/test").json()
    return result


def test_redirects_are_not_followed_over_rest(tmp_path: Path, landing: ReplyServer) -> None:
    """Loopback is allowed as addresses (not by name), so `localhost` is a tenant's name
    like any other: it goes through the egress proxy."""
    with installed(tmp_path, None, allowed="127.0.0.0/8, ::1") as inst:
        for status in REDIRECTS:
            location = f"{landing.endpoint}/tenant-bucket/elsewhere"
            with ReplyServer(status, headers=[("Location", location)]) as endpoint:
                result = _connection_test(
                    inst, f"redirect{status}", f"http://localhost:{endpoint.port}"
                )
                assert result["ok"] is False, (status, result)
                assert result["etag"] is None
                if status != 301:
                    assert "does not follow redirects" in result["diagnosis"], result
                assert endpoint.requests, status
                assert landing.accepted == 0, status


def test_direct_path_follows_no_redirect_but_303(tmp_path: Path, landing: ReplyServer) -> None:
    """An allow-listed endpoint is contacted directly; there reqwest's own rule holds: 301,
    302, 307 and 308 to a PUT are not followed, a 303 is (as a GET). This is why nothing a
    tenant controls goes direct."""
    with installed(tmp_path, None, allowed="127.0.0.1") as inst:
        for status in REDIRECTS:
            location = f"{landing.endpoint}/tenant-bucket/elsewhere"
            with ReplyServer(status, headers=[("Location", location)]) as endpoint:
                result = _connection_test(inst, f"direct{status}", endpoint.endpoint)
                assert (landing.accepted > 0) is (status == 303), (status, result)
                landing.accepted = 0


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
