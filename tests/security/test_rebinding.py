"""The endpoint policy at connect time (SPEC §7): a name that was public when the
destination was saved and resolves to a refused address later (DNS rebinding) is refused
before a connection is made, by the egress proxy the writer's client goes through.

Names are resolved by a resolver injected into this process's policy, never by DNS; the
only sockets opened are on 127.0.0.1. The destinations are saved and tested through the
services in process (the resolver cannot be injected into a `s3dest serve` subprocess);
tests/security/test_endpoints.py covers the same refusal over REST for literal addresses.

Before the fix the name was not checked at all, neither at save time nor at connect time,
and the PUT went to whatever the name resolved to.
"""

from __future__ import annotations

import base64
import os
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from s3dest.access.audit import CLI
from s3dest.destinations import service
from s3dest.destinations.schemas import parse_create
from s3dest.destinations.secrets import SecretBox
from s3dest.errors import DestinationError, InvalidInput
from s3dest.runtime import open_box, open_engine
from s3dest.s3 import egress
from s3dest.s3.egress import SETTING, EgressPolicy
from s3dest.s3.egress_proxy import shared_proxy
from s3dest.s3.writer import ObjectRequest, S3Destination, put_object
from s3dest.settings import Settings
from s3dest.store.projects import create_project
from tests.support.builders import EXAMPLE_ACCESS_KEY_ID, EXAMPLE_SECRET
from tests.support.listeners import RawListener, ReplyServer, closed_port
from tests.support.moto_server import S3Server

PUBLIC = "93.184.215.14"  # only ever an answer of the fake resolver: nothing connects to it


@dataclass
class FakeDns:
    answers: dict[str, list[str]]
    lookups: int = 0

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.lookups += 1
        if host not in self.answers:
            raise OSError(-2, "Name or service not known")
        return self.answers[host]

    def use(self, allowed: str = "") -> None:
        egress.configure(EgressPolicy.from_setting(allowed, resolver=self))


@pytest.fixture
def dns() -> Iterator[FakeDns]:
    fake = FakeDns({})
    fake.use()
    try:
        yield fake
    finally:
        egress.configure(EgressPolicy.from_setting(os.environ.get(SETTING, "")))


@dataclass
class Local:
    engine: Engine
    box: SecretBox
    project_id: str

    def create(self, name: str, endpoint: str, **extra: str) -> str:
        fields = {
            "name": name,
            "bucket": "tenant-bucket",
            "region": "us-east-1",
            "accessKeyId": EXAMPLE_ACCESS_KEY_ID,
            "secretAccessKey": EXAMPLE_SECRET,
            "endpointUrl": endpoint,
            **extra,
        }
        saved = service.create(
            self.engine, self.box, project_id=self.project_id, body=parse_create(fields), actor=CLI
        )
        return saved.row.id

    def test(self, ref: str) -> service.TestResult:
        return service.connection_test(
            self.engine, self.box, project_id=self.project_id, ref=ref, timeout_s=10, actor=CLI
        )


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Local]:
    settings = Settings(data_dir=tmp_path / "data", secret_key=None)
    engine = open_engine(settings)
    try:
        yield Local(engine, open_box(settings), create_project(engine, "rebind").project.id)
    finally:
        engine.dispose()


def test_a_name_that_rebinds_to_loopback_is_refused_at_connect_time(
    dns: FakeDns, local: Local
) -> None:
    with ReplyServer(200, headers=[("ETag", '"abc"')]) as target:
        dns.answers["bucket-store.example"] = [PUBLIC]
        ref = local.create("rebinding", f"http://bucket-store.example:{target.port}")
        dns.answers["bucket-store.example"] = ["127.0.0.1"]  # the attacker's DNS flips
        result = local.test(ref)
        assert result.ok is False
        assert result.diagnosis is not None
        assert "The endpoint is not allowed" in result.diagnosis
        assert "bucket-store.example resolves to 127.0.0.1, a loopback address" in (
            result.diagnosis
        )
        assert target.accepted == 0


@pytest.mark.parametrize(
    "answers",
    [["169.254.169.254"], ["10.0.0.7"], [PUBLIC, "127.0.0.1"], ["::ffff:127.0.0.1"]],
)
def test_every_address_of_a_rebound_name_is_checked_on_https_too(
    dns: FakeDns, local: Local, answers: list[str]
) -> None:
    dns.answers["secure-store.example"] = [PUBLIC]
    ref = local.create("tls", "https://secure-store.example")
    dns.answers["secure-store.example"] = answers
    result = local.test(ref)
    assert result.ok is False and result.diagnosis is not None
    assert "not allowed" in result.diagnosis, result.diagnosis


def test_the_check_is_made_again_for_every_new_connection(
    dns: FakeDns, s3_server: S3Server, bucket: str
) -> None:
    """A name inside an allow-listed CIDR goes through the proxy: a signed PUT reaches real
    S3 (moto) through it, and once the name resolves elsewhere the next connection is
    refused. (A dotless name: moto reads a dotted Host as a virtual-hosted bucket.)"""
    dns.answers["s3store"] = ["127.0.0.1"]
    dns.use(allowed="127.0.0.1/32")
    creds = s3_server.putonly_user(bucket)
    dest = S3Destination(
        bucket=bucket,
        region=s3_server.region,
        access_key_id=creds.access_key_id,
        secret_access_key=creds.secret_access_key,
        endpoint_url=f"http://s3store:{s3_server.port}",
        request_timeout_s=10,
    )
    before = shared_proxy().connections
    put_object(dest, ObjectRequest("rebind/1.json", b"{}", {}, "e1"))
    assert shared_proxy().connections == before + 1
    body = s3_server.client().get_object(Bucket=bucket, Key="rebind/1.json")["Body"].read()
    assert body == b"{}"
    dns.answers["s3store"] = ["127.0.0.2"]  # not in the allow-list
    # a fresh client, as after the pool's idle timeout or a restart
    egress.configure(EgressPolicy.from_setting("127.0.0.1/32", resolver=dns))
    with pytest.raises(DestinationError, match=r"resolves to 127\.0\.0\.2, a loopback"):
        put_object(dest, ObjectRequest("rebind/2.json", b"{}", {}, "e2"))


def test_a_name_refused_at_save_time_is_a_422_naming_the_rule(dns: FakeDns, local: Local) -> None:
    dns.answers["intranet.example"] = ["192.168.10.4"]
    with pytest.raises(InvalidInput) as refused:
        local.create("intranet", "https://intranet.example")
    text = refused.value.fields["endpointUrl"]
    assert "intranet.example resolves to 192.168.10.4, a private address (RFC 1918)" in text
    assert SETTING in text
    with pytest.raises(InvalidInput) as unresolvable:
        local.create("nowhere", "https://nowhere.example")
    assert "does not resolve (DNS lookup failed" in unresolvable.value.fields["endpointUrl"]


# -- the proxy itself -------------------------------------------------------------------------


def _ask_proxy(request: bytes, *, auth: bool = True) -> bytes:
    proxy = shared_proxy()
    user, token = proxy.url_for("raw-test").split("//", 1)[1].split("@", 1)[0].split(":", 1)
    header = b""
    if auth:
        header = b"Proxy-Authorization: Basic " + base64.b64encode(f"{user}:{token}".encode())
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(request.replace(b"\r\n\r\n", b"\r\n" + header + b"\r\n\r\n", 1))
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_a_refused_address_gets_the_same_answer_from_the_proxy_whatever_listens_there(
    dns: FakeDns,
) -> None:
    """Closed port, non-HTTP listener, HTTP server on a refused address: byte for byte the
    same 403, and not one connection to any of them."""
    with RawListener() as raw, ReplyServer(200) as http:
        ports = [closed_port(), raw.port, http.port]
        answers = set()
        for port in ports:
            answers.add(_ask_proxy(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n".encode()))
            answers.add(_ask_proxy(f"PUT http://127.0.0.1:{port}/b/k HTTP/1.1\r\n\r\n".encode()))
        assert len(answers) == 1, answers
        answer = answers.pop()
        assert answer.startswith(b"HTTP/1.1 403 ")
        assert b"127.0.0.1 is 127.0.0.1, a loopback address" in answer
        assert raw.accepted == 0 and http.accepted == 0


def test_the_proxy_serves_only_s3dest_itself(dns: FakeDns) -> None:
    dns.answers["public.example"] = [PUBLIC]
    answer = _ask_proxy(b"CONNECT public.example:443 HTTP/1.1\r\n\r\n", auth=False)
    assert answer.startswith(b"HTTP/1.1 407 ")
    assert dns.lookups == 0  # refused before it resolved anything
