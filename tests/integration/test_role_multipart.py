"""Role destinations with bodies above the inline threshold (SPEC §8, issue 14): the
multipart path (botocore's client, s3/multipart.py) takes the role's credentials from
the same per-process cache as small PUTs, and keeps taking them while an upload runs.

moto (STS, IAM enforced, S3) through two loopback proxies: the STS recorder (every
AssumeRole's parameters) and the fault proxy in front of S3 (every request's headers, and
a delay per PUT so that one upload outlasts a credential's fresh window). s3dest runs with
64 KiB inline bodies and parts (tests/conftest.py) and role sessions renewed 3 s after
they begin (900 s sessions: STS's minimum).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import httpx
import orjson
import pytest
from tests.conftest import SMALL_PARTS_ENV, TEST_PART_BYTES
from tests.support.builders import message
from tests.support.fault_proxy import FaultProxy
from tests.support.fault_state import SeenRequest
from tests.support.moto_server import S3Server
from tests.support.polling import wait_delivered
from tests.support.roles import create_role, identity_env
from tests.support.s3dest_server import S3destEnv, S3destProcess, serve
from tests.support.sts_recorder import StsRecorder

from s3dest.devtools.moto import ACCOUNT_ID

FRESH_SECONDS = 3
_SIGNER = re.compile(r"Credential=([A-Z0-9]+)/")


@dataclass
class Setup:
    s3: S3Server
    recorder: StsRecorder
    proxy: FaultProxy
    server: S3destProcess
    api: httpx.Client


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("role-multipart")
    recorder = StsRecorder(s3_server.endpoint).start()
    proxy = FaultProxy(s3_server.endpoint).start()
    identity, _arn = identity_env(s3_server, recorder.url, fresh_seconds=FRESH_SECONDS)
    env = S3destEnv(
        data_dir=tmp / "data",
        extra={
            "S3DEST_SECRET_KEY": "",
            **identity,
            **SMALL_PARTS_ENV,
        },
    )
    _, key = env.create_project("role-multipart")
    server = serve(env, tmp)
    api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60)
    try:
        yield Setup(s3_server, recorder, proxy, server, api)
    finally:
        api.close()
        server.kill()
        proxy.stop()
        recorder.stop()


def _role_destination(setup: Setup) -> tuple[dict[str, Any], str]:
    """A destination with only roleArn, on the fault proxy, its role created from the
    trust and permissions policies s3dest shows: (the destination, its bucket)."""
    bucket = setup.s3.create_bucket()
    role = f"s3dest-big-{uuid.uuid4().hex[:8]}"
    response = setup.api.post(
        "/v1/destinations",
        json={
            "name": role,
            "bucket": bucket,
            "region": setup.s3.region,
            "endpointUrl": setup.proxy.url,
            "roleArn": f"arn:aws:iam::{ACCOUNT_ID}:role/{role}",
        },
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    assert created["requiredActions"] == ["s3:PutObject"]  # multipart needs no more
    create_role(setup.s3, role, created["trustPolicy"], created["iamPolicy"])
    return created, bucket


def _send_large(setup: Setup, destination: str, parts: int) -> tuple[str, dict[str, Any]]:
    """One message whose stored body spans `parts` parts: (its event id, the message)."""
    sent = message(0, destination, pad=TEST_PART_BYTES * (parts - 1) + TEST_PART_BYTES // 2)
    response = setup.api.post("/v1/messages", json=sent)
    assert response.status_code == 202, response.text
    event_id: str = response.json()["accepted"][0]["eventId"]
    return event_id, sent


def _part_signers(seen: list[SeenRequest], key: str) -> list[str]:
    """The access key id that signed each UploadPart of `key`, in the order they came."""
    signers = []
    for request in seen:
        path = unquote(request.path)
        if request.method == "PUT" and key in path and "partNumber=" in path:
            found = _SIGNER.search(request.headers.get("authorization", ""))
            assert found, request.headers
            signers.append(found.group(1))
    return signers


def _check_object(setup: Setup, bucket: str, record: dict[str, Any], sent: dict[str, Any]) -> int:
    """The object is whole, and the record has its ETag; returns its number of parts."""
    admin = setup.s3.client()
    head = admin.head_object(Bucket=bucket, Key=record["key"])
    assert record["etag"] == head["ETag"]
    parts = int(head["ETag"].strip('"').rsplit("-", 1)[1])  # a multipart ETag: md5-N
    stored = admin.get_object(Bucket=bucket, Key=record["key"])["Body"].read()
    assert orjson.loads(stored)["data"]["result"] == sent["result"]
    return parts


def test_a_role_destination_delivers_a_multipart_body(setup: Setup) -> None:
    created, bucket = _role_destination(setup)
    event_id, sent = _send_large(setup, created["name"], parts=4)
    (record,) = wait_delivered(setup.api, [event_id])
    assert record["attempts"] == 1
    assert _check_object(setup, bucket, record, sent) == 4
    calls = setup.recorder.assume_role_calls(created["roleArn"])
    assert calls and {c["ExternalId"] for c in calls} == {created["externalId"]}
    assert len(_part_signers(setup.proxy.seen(), record["key"])) == 4


def test_parts_after_a_renewal_are_signed_with_the_renewed_credentials(setup: Setup) -> None:
    """Each part is held 0.4 s by the proxy, two at a time: 20 parts take 4 s or more, the
    credentials are renewed 3 s into the upload. Before the fix, every part of an upload
    was signed with the credentials of its start (the botocore client was built from
    them, frozen): an upload that outlived them failed with ExpiredToken on AWS."""
    created, bucket = _role_destination(setup)
    setup.proxy.put_delay_seconds = 0.4
    try:
        event_id, sent = _send_large(setup, created["name"], parts=20)
        (record,) = wait_delivered(setup.api, [event_id], timeout=120)
    finally:
        setup.proxy.put_delay_seconds = 0.0
    assert record["attempts"] == 1
    assert _check_object(setup, bucket, record, sent) == 20

    calls = setup.recorder.assume_role_calls(created["roleArn"])
    assert len(calls) >= 2, calls  # renewed during the upload
    signers = _part_signers(setup.proxy.seen(), record["key"])
    assert len(signers) == 20
    first, last = signers[0], signers[-1]
    assert first != last, "every part was signed with the credentials of the upload's start"
    # Once a part went out with the renewed credentials, no later one used the old ones.
    assert first not in signers[signers.index(last) :]
