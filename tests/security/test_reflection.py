"""What an endpoint answers reaches the tenant only as an S3 error code and a bounded,
plain message (SPEC §7, issue 13 item 1: "parts of the reply come back to the tenant").

A loopback fake S3 (allow-listed) answers with a huge, HTML-laden, control-character
<Message>, bogus codes, a bogus x-amz-bucket-region and a bogus ETag; the connection test's
result and a held message's lastError must show none of it verbatim. Before the fix the
whole <Message> (100 KB of it), the header and the ETag were copied as they were.

Both databases: lastError is stored.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.builders import (
    example_destination_fields,
    message,
)
from tests.support.installs import Installation, installed
from tests.support.listeners import ReplyServer
from tests.support.polling import message_record, wait_until

HOSTILE = (
    "<script>alert(document.cookie)</script><img src=x onerror=alert(1)>"
    "&lt;b&gt;bold&lt;/b&gt; \x1b[31mred\x1b[0m \x00\x07\r\nInjected: header"
    " \u202egnp.exe \u200b" + "A" * 100_000
)
CONTROL = re.compile(r"[\x00-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
LIMIT = 300


def xml_error(code: str, text: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{html.escape(code)}</Code><Message>{html.escape(text)}</Message>"
        "<RequestId>1</RequestId></Error>"
    ).encode()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Installation]:
    """One server per database for the module (each test has a project of its own)."""
    url = None if request.param == "sqlite" else request.getfixturevalue("pg_module_database_url")
    with installed(tmp_path_factory.mktemp("reflection"), url, allowed="127.0.0.1") as installation:
        yield installation


@pytest.fixture
def inst(server: Installation) -> Iterator[Installation]:
    tenant = server.new_project()
    with tenant.api:
        yield tenant


def create(inst: Installation, name: str, endpoint: str) -> str:
    created = inst.api.post(
        "/v1/destinations",
        json=example_destination_fields(
            name, bucket="tenant-bucket", region="us-east-1", endpointUrl=endpoint
        ),
    )
    assert created.status_code == 201, created.text
    ident: str = created.json()["id"]
    return ident


def connection_test(inst: Installation, ref: str) -> dict[str, Any]:
    result: dict[str, Any] = inst.api.post(f"/v1/destinations/{ref}/test").json()
    return result


def assert_plain(text: str) -> None:
    assert len(text) <= 2 * LIMIT + 400, len(text)  # our sentence plus ≤ 300 of theirs
    assert "<" not in text and ">" not in text, text
    assert not CONTROL.search(text), repr(text)
    assert "A" * (LIMIT + 1) not in text


def test_a_hostile_message_is_bounded_and_plain(inst: Installation) -> None:
    with ReplyServer(400, body=xml_error("InvalidArgument", HOSTILE)) as s3:
        result = connection_test(inst, create(inst, "hostile", s3.endpoint))
    assert result["ok"] is False
    diagnosis = result["diagnosis"]
    assert "InvalidArgument" in diagnosis  # the code is shown, it is a code
    assert "alert" not in diagnosis.split("S3 said:")[0]
    assert_plain(diagnosis)
    # the message's own words survive, without the markup: bold, red, gnp.exe
    assert "bold" in diagnosis and "red" in diagnosis


@pytest.mark.parametrize(
    ("code", "marker"),
    [
        ("<b>x</b>", "<b>"),
        ("Access Denied", "Access Denied"),
        ("A" * 65, "A" * 65),
        ("Code\u202eDenied", "Denied"),
        ("x;rm -rf", "rm -rf"),
    ],
)
def test_a_code_that_is_not_an_s3_code_is_not_shown(
    inst: Installation, code: str, marker: str
) -> None:
    with ReplyServer(400, body=xml_error(code, "something")) as s3:
        result = connection_test(inst, create(inst, "code", s3.endpoint))
    assert result["ok"] is False
    assert marker not in result["diagnosis"]
    assert "HTTP 400" in result["diagnosis"]
    assert_plain(result["diagnosis"])


def test_a_region_header_is_shown_only_when_it_is_a_region(inst: Installation) -> None:
    bogus = "eu-west-1<script>alert(1)</script>"
    with ReplyServer(301, headers=[("x-amz-bucket-region", bogus)]) as s3:
        result = connection_test(inst, create(inst, "bogus-region", s3.endpoint))
    assert result["ok"] is False
    assert "script" not in result["diagnosis"] and "eu-west-1" not in result["diagnosis"]
    assert "wrong region" in result["diagnosis"]
    with ReplyServer(301, headers=[("x-amz-bucket-region", "eu-west-2")]) as s3:
        result = connection_test(inst, create(inst, "real-region", s3.endpoint))
    assert "region 'eu-west-2'" in result["diagnosis"]  # a region is still shown


def test_an_etag_is_shown_only_when_it_looks_like_one(inst: Installation) -> None:
    with ReplyServer(200, headers=[("ETag", '"<img src=x onerror=alert(1)>"')]) as s3:
        result = connection_test(inst, create(inst, "bogus-etag", s3.endpoint))
    assert result["ok"] is True and result["etag"] is None
    with ReplyServer(200, headers=[("ETag", '"9b2cf535f27731c974343645a3985328"')]) as s3:
        result = connection_test(inst, create(inst, "real-etag", s3.endpoint))
    assert result["etag"] == '"9b2cf535f27731c974343645a3985328"'


def test_a_held_messages_last_error_is_bounded_and_plain(inst: Installation) -> None:
    with ReplyServer(403, body=xml_error("AccessDeniedX", HOSTILE)) as s3:
        create(inst, "held", s3.endpoint)
        accepted = inst.api.post("/v1/messages", json={"messages": [message(1, "held")]})
        assert accepted.status_code in (200, 202), accepted.text
        event_id = accepted.json()["accepted"][0]["eventId"]
        record = wait_until(
            lambda: (r := message_record(inst.api, event_id))["lastError"] and r,
            60,
            "the message to record its error",
        )
    assert_plain(record["lastError"])
    listed = inst.api.get("/v1/destinations/held").json()
    for value in listed.values():
        if isinstance(value, str):
            assert_plain(value)
