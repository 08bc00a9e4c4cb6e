"""SSRF through endpointUrl (issue 13 item 1, SPEC §7), tried over the REST API of a real
`s3dest serve` on SQLite and PostgreSQL.

Before the fix every endpoint below was saved (201), and the connection test and the
deliveries sent signed PUTs there. Network traffic stays on 127.0.0.0/8: refusals of
private and metadata addresses are proven by the answer alone (nothing is contacted).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.builders import EXAMPLE_ACCESS_KEY_ID, EXAMPLE_SECRET, message
from tests.support.installs import Installation, install
from tests.support.listeners import RawListener, ReplyServer, closed_port
from tests.support.polling import message_record, wait_until

SETTING = "S3DEST_ALLOWED_ENDPOINT_HOSTS"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def strict(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Installation]:
    """`s3dest serve` with no allow-list: the policy as a platform runs it."""
    url = None if request.param == "sqlite" else request.getfixturevalue("pg_module_database_url")
    installed = install(tmp_path_factory.mktemp(f"strict-{request.param}"), url, allowed="")
    try:
        yield installed
    finally:
        installed.close()


def body(name: str, endpoint: str | None, **extra: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "name": name,
        "bucket": "tenant-bucket",
        "region": "us-east-1",
        "accessKeyId": EXAMPLE_ACCESS_KEY_ID,
        "secretAccessKey": EXAMPLE_SECRET,
        **extra,
    }
    if endpoint is not None:
        fields["endpointUrl"] = endpoint
    return fields


def refusal(response: httpx.Response) -> str:
    assert response.status_code == 422, (response.status_code, response.text)
    fields: dict[str, str] = response.json()["error"]["fields"]
    assert list(fields) == ["endpointUrl"], fields
    text = fields["endpointUrl"]
    assert SETTING in text, text  # names the operator setting that widens the policy
    return text


# endpointUrl -> words the 422 must contain (the address it stands for, and the rule)
SPELLINGS: list[tuple[str, tuple[str, ...]]] = [
    ("http://127.0.0.1:9000", ("127.0.0.1", "a loopback address")),
    ("http://127.1:9000", ("127.1 is 127.0.0.1", "a loopback address")),
    ("http://127.0.1", ("127.0.0.1", "loopback")),
    ("http://2130706433:9000", ("2130706433 is 127.0.0.1", "loopback")),
    ("http://0x7f000001:9000", ("127.0.0.1", "loopback")),
    ("http://0x7F.0.0.1", ("127.0.0.1", "loopback")),
    ("http://0177.0.0.1:9000", ("127.0.0.1", "loopback")),
    ("http://017700000001", ("127.0.0.1", "loopback")),
    ("http://127.0.0.1.:9000", ("127.0.0.1", "loopback")),
    ("https://127.0.0.1", ("127.0.0.1", "loopback")),
    ("http://[::1]:9000", ("::1", "loopback")),
    ("http://[0:0:0:0:0:0:0:1]", ("::1", "loopback")),
    ("http://[::ffff:127.0.0.1]:9000", ("IPv4-mapped form of 127.0.0.1", "loopback")),
    ("http://[::ffff:7f00:1]", ("IPv4-mapped form of 127.0.0.1",)),
    ("http://[::127.0.0.1]", ("IPv4-compatible form of 127.0.0.1",)),
    ("http://[64:ff9b::7f00:1]", ("NAT64 form of 127.0.0.1",)),
    ("http://[2002:7f00:1::]", ("6to4 form of 127.0.0.1",)),
    ("http://0.0.0.0:9000", ("0.0.0.0", "unspecified")),
    ("http://0:9000", ("0.0.0.0", "unspecified")),
    ("http://[::]:9000", ("::", "unspecified")),
    ("http://10.0.0.1", ("10.0.0.1", "private address (RFC 1918)")),
    ("http://172.16.5.4:9000", ("172.16.5.4", "RFC 1918")),
    ("http://192.168.1.1", ("192.168.1.1", "RFC 1918")),
    ("http://3232235777", ("192.168.1.1", "RFC 1918")),
    ("http://100.64.0.1", ("100.64.0.1", "carrier-grade NAT")),
    ("http://[fd12:3456::1]", ("fd12:3456::1", "unique local")),
    ("http://[fc00::1]", ("fc00::1", "unique local")),
    ("http://169.254.1.1", ("169.254.1.1", "link-local")),
    ("http://[fe80::1]", ("fe80::1", "link-local")),
    ("http://169.254.169.254", ("169.254.169.254", "cloud metadata")),
    ("http://2852039166", ("169.254.169.254", "cloud metadata")),
    ("http://0xa9.0xfe.0xa9.0xfe", ("169.254.169.254", "cloud metadata")),
    ("http://[::ffff:169.254.169.254]", ("169.254.169.254, a cloud metadata",)),
    ("http://[64:ff9b::a9fe:a9fe]", ("NAT64 form of 169.254.169.254",)),
    ("http://[fd00:ec2::254]", ("fd00:ec2::254", "cloud metadata")),
    ("http://100.100.100.200", ("100.100.100.200", "cloud metadata")),
    ("http://metadata.google.internal", ("cloud metadata name",)),
    ("http://metadata.google.internal.", ("cloud metadata name",)),
    ("http://224.0.0.1", ("224.0.0.1", "multicast")),
    ("http://[ff02::1]", ("ff02::1", "multicast")),
    ("http://255.255.255.255", ("255.255.255.255", "broadcast")),
    ("http://240.0.0.1", ("240.0.0.1", "reserved")),
    ("http://localhost:9000", ("localhost resolves to", "a loopback address")),
    ("http://LOCALHOST.:9000", ("localhost resolves to", "loopback")),
    ("http://s3.localhost:9000", ("s3.localhost is a loopback name",)),
    ("https://bucket.s3.localhost", ("loopback name",)),
]


def test_every_spelling_of_a_refused_address_is_refused_at_save_time(
    strict: Installation,
) -> None:
    wrong: list[str] = []
    for n, (url, words) in enumerate(SPELLINGS):
        response = strict.api.post("/v1/destinations", json=body(f"spelling{n}", url))
        if response.status_code != 422:
            wrong.append(f"{url}: {response.status_code} {response.text[:200]}")
            continue
        text = refusal(response)
        if not all(w in text for w in words):
            wrong.append(f"{url}: {text}")
    assert not wrong, "\n".join(wrong)
    listed = strict.api.get("/v1/destinations").json()["destinations"]
    assert not [d for d in listed if d["name"].startswith("spelling")]


def test_a_refused_endpoint_is_refused_on_update_too(strict: Installation) -> None:
    created = strict.api.post("/v1/destinations", json=body("on-aws", None))
    assert created.status_code == 201, created.text
    for url in ("http://127.1:9000", "http://[::ffff:169.254.169.254]", "http://localhost"):
        response = strict.api.patch(
            f"/v1/destinations/{created.json()['id']}", json={"endpointUrl": url}
        )
        assert "not allowed" in refusal(response)
    unchanged = strict.api.get(f"/v1/destinations/{created.json()['id']}").json()
    assert unchanged["endpointUrl"] is None


def test_aws_endpoints_are_always_allowed(strict: Installation) -> None:
    for n, url in enumerate(
        ("https://s3.us-east-1.amazonaws.com", "https://s3.dualstack.eu-west-1.amazonaws.com")
    ):
        response = strict.api.post("/v1/destinations", json=body(f"aws{n}", url))
        assert response.status_code == 201, response.text


def test_the_allow_list_admits_exactly_what_it_lists(
    tmp_path: Path, database_url: str | None
) -> None:
    """127.0.0.2 and 127.0.8.0/30 listed: those are written to, 127.0.0.1 and 127.0.8.5 are
    refused, although every one of them is a loopback listener."""
    installed = install(tmp_path, database_url, allowed="127.0.0.2, 127.0.8.0/30")
    servers = {
        host: ReplyServer(200, headers=[("ETag", '"0123456789abcdef"')], host=host)
        for host in ("127.0.0.2", "127.0.8.1", "127.0.0.1", "127.0.8.5")
    }
    try:
        for host, server in servers.items():
            response = installed.api.post(
                "/v1/destinations", json=body(host.replace(".", "-"), server.endpoint)
            )
            if host in ("127.0.0.2", "127.0.8.1"):
                assert response.status_code == 201, response.text
                tested = installed.api.post(f"/v1/destinations/{response.json()['id']}/test")
                assert tested.json()["ok"] is True, tested.text
                assert [m for m, _ in server.requests] == ["PUT"]
            else:
                assert f"{host}, a loopback address" in refusal(response)
                assert server.accepted == 0
    finally:
        for server in servers.values():
            server.__exit__(None, None, None)
        installed.close()


def _same(texts: list[str], ports: list[int]) -> set[str]:
    """The answers with each one's own port replaced: what would differ by listener."""
    return {re.sub(rf"\b{port}\b", "PORT", text) for text, port in zip(texts, ports, strict=True)}


def test_a_refused_address_gets_the_same_answer_whatever_listens_there(
    tmp_path: Path, database_url: str | None
) -> None:
    """Destinations saved while 127.0.0.1 was allowed, then the operator narrows the
    policy: the connection test and the deliveries are refused before any connection,
    with one answer for a closed port, a non-HTTP listener and an HTTP server."""
    installed = install(tmp_path, database_url, allowed="127.0.0.1")
    http = ReplyServer(403, body=b"<Error><Code>AccessDenied</Code></Error>")
    raw = RawListener()
    ports = [closed_port(), raw.port, http.port]
    try:
        ids = []
        for port in ports:
            created = installed.api.post(
                "/v1/destinations", json=body(f"p{port}", f"http://127.0.0.1:{port}")
            )
            assert created.status_code == 201, created.text
            ids.append(created.json()["id"])
            # The deliveries' half below uses its own destinations: a failed connection test
            # holds a destination (status from evidence), and its messages would then wait
            # for the probe instead of being refused by the workers.
            delivered_to = installed.api.post(
                "/v1/destinations", json=body(f"q{port}", f"http://127.0.0.1:{port}")
            )
            assert delivered_to.status_code == 201, delivered_to.text
        # before: the HTTP server's answer differs from the others' (the port scanner of
        # issue 13), which is what the policy must hide
        before = [installed.api.post(f"/v1/destinations/{i}/test").json()["diagnosis"] for i in ids]
        assert len(_same(before, ports)) > 1, before
        installed.restart(allowed="")
        http.accepted = raw.accepted = 0
        after = [installed.api.post(f"/v1/destinations/{i}/test").json() for i in ids]
        assert not any(a["ok"] for a in after)
        diagnoses = [a["diagnosis"] for a in after]
        assert len(_same(diagnoses, ports)) == 1, diagnoses
        assert "not allowed" in diagnoses[0]
        assert "127.0.0.1, a loopback address" in diagnoses[0]
        assert SETTING in diagnoses[0]
        # deliveries: held with the same reason, nothing sent
        accepted = installed.api.post(
            "/v1/messages", json={"messages": [message(1, f"q{p}") for p in ports]}
        )
        assert accepted.status_code in (200, 202), accepted.text
        event_ids = [a["eventId"] for a in accepted.json()["accepted"]]

        def errors() -> list[str] | None:
            records = [message_record(installed.api, e) for e in event_ids]
            found = [r["lastError"] for r in records if r["lastError"]]
            return found if len(found) == len(records) else None

        last_errors = wait_until(errors, 60, "every message to record its error")
        assert len(_same(last_errors, ports)) == 1, last_errors
        assert "not allowed" in last_errors[0]
        assert {message_record(installed.api, e)["state"] for e in event_ids} == {"held"}
        assert http.accepted == 0 and raw.accepted == 0
    finally:
        raw.__exit__(None, None, None)
        http.__exit__(None, None, None)
        installed.close()
