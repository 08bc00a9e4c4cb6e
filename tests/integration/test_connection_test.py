"""The connection test (`POST /v1/destinations/{id}/test`, `s3dest destinations test`):
one small, clearly named object written with PutObject only, and a plain-language
diagnosis when it cannot be written. Real moto S3 with IAM enforced; SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from tests.support.builders import message
from tests.support.load import SilentListener
from tests.support.moto_server import Credentials, S3Server
from tests.support.polling import wait_for_state, wait_until
from tests.support.s3dest_server import S3destEnv, S3destProcess, serve

from s3dest.runtime import open_engine
from s3dest.settings import Settings
from s3dest.store.projects import create_project

PREFIX = "s3dest-connection-test/"


@dataclass
class Installation:
    env: S3destEnv
    server: S3destProcess
    engine: Engine


@dataclass
class Project:
    id: str
    api: httpx.Client
    installation: Installation

    def cli_test(self, ref: str) -> tuple[int, dict[str, Any], str]:
        """`s3dest destinations test REF`: exit code, its JSON answer, stderr."""
        result = self.installation.env.cli(
            "destinations", "test", "--project", self.id, ref, check=False
        )
        return result.returncode, json.loads(result.stdout), result.stderr


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def installation(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Installation]:
    """One `s3dest serve` per backend for this module."""
    url = None if request.param == "sqlite" else request.getfixturevalue("pg_module_database_url")
    tmp = tmp_path_factory.mktemp(f"connection-{request.param}")
    env = S3destEnv(data_dir=tmp / "data", database_url=url, extra={"S3DEST_SECRET_KEY": ""})
    process = serve(env, tmp)
    engine = open_engine(Settings(data_dir=env.data_dir, database_url=url), migrate=False)
    try:
        yield Installation(env, process, engine)
    finally:
        process.kill()
        engine.dispose()


@pytest.fixture
def project(installation: Installation) -> Iterator[Project]:
    # A fresh name per test: project names are unique on a server (issue 15 item 8).
    created = create_project(installation.engine, f"connection-test-{uuid.uuid4().hex[:8]}")
    with httpx.Client(
        base_url=installation.server.url,
        headers={"Authorization": f"Bearer {created.api_key}"},
        timeout=60,
    ) as client:
        yield Project(created.project.id, client, installation)


def create(
    project: Project, s3_server: S3Server, bucket: str, creds: Credentials, name: str = "dest"
) -> dict[str, Any]:
    response = project.api.post(
        "/v1/destinations",
        json={
            "name": name,
            "bucket": bucket,
            "region": s3_server.region,
            "accessKeyId": creds.access_key_id,
            "secretAccessKey": creds.secret_access_key,
            "endpointUrl": s3_server.endpoint,
        },
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def api_test(project: Project, ref: str) -> dict[str, Any]:
    response = project.api.post(f"/v1/destinations/{ref}/test")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    assert set(result) >= {"ok", "key", "diagnosis"}
    return result


def test_passes_with_a_putobject_only_user(
    project: Project, s3_server: S3Server, bucket: str
) -> None:
    creds = s3_server.putonly_user(bucket)
    dest = create(project, s3_server, bucket, creds)

    result = api_test(project, dest["id"])
    assert result["ok"] is True, result
    assert result["diagnosis"] is None
    assert result["key"].startswith(PREFIX) and result["key"].endswith(".json")

    # The object is really there (read with the admin key: the user cannot read).
    admin = s3_server.client()
    found = admin.get_object(Bucket=bucket, Key=result["key"])
    assert found["ContentType"] == "application/json"
    body = json.loads(found["Body"].read())
    assert "connection test" in json.dumps(body)
    assert found["ETag"] == result.get("etag", found["ETag"])

    # The CLI does the same, by name, and writes a second, distinct object.
    code, cli_result, _ = project.cli_test("dest")
    assert code == 0
    assert cli_result["ok"] is True
    assert cli_result["key"].startswith(PREFIX) and cli_result["key"] != result["key"]
    keys = {o["Key"] for o in admin.list_objects_v2(Bucket=bucket)["Contents"]}
    assert keys == {result["key"], cli_result["key"]}

    assert project.api.get(f"/v1/destinations/{dest['id']}").json()["status"] == "healthy"


def test_wrong_secret_is_diagnosed(project: Project, s3_server: S3Server, bucket: str) -> None:
    real = s3_server.putonly_user(bucket)
    wrong = real.secret_access_key[:-4] + (
        "AAAA" if not real.secret_access_key.endswith("AAAA") else "BBBB"
    )
    dest = create(project, s3_server, bucket, Credentials(real.access_key_id, wrong))
    masked = f"{real.access_key_id[:4]}…{real.access_key_id[-4:]}"

    # Issue 15 item 3: not "healthy" before anything has written to it.
    assert project.api.get(f"/v1/destinations/{dest['id']}").json()["status"] == "untested"
    result = api_test(project, dest["id"])
    assert result["ok"] is False
    assert result["key"].startswith(PREFIX)
    diagnosis = result["diagnosis"]
    assert "secret access key does not belong" in diagnosis, diagnosis
    # Issue 15 item 3: a new destination with a wrong secret is not HEALTHY once tested.
    shown = project.api.get(f"/v1/destinations/{dest['id']}").json()
    assert (shown["status"], shown["diagnosis"]) == ("failing", diagnosis)
    assert masked in diagnosis
    assert wrong not in diagnosis and real.access_key_id not in diagnosis

    code, cli_result, _ = project.cli_test(dest["name"])
    assert code == 1
    assert cli_result["ok"] is False
    assert cli_result["diagnosis"] == diagnosis
    assert "Contents" not in s3_server.client().list_objects_v2(Bucket=bucket)

    # Fixing the secret fixes the test.
    project.api.patch(
        f"/v1/destinations/{dest['id']}", json={"secretAccessKey": real.secret_access_key}
    ).raise_for_status()
    assert api_test(project, dest["id"])["ok"] is True


def test_missing_bucket_is_diagnosed(project: Project, s3_server: S3Server) -> None:
    missing = f"s3dest-missing-{uuid.uuid4().hex[:12]}"
    creds = s3_server.putonly_user(missing)  # allowed to write, were the bucket there
    dest = create(project, s3_server, missing, creds)

    result = api_test(project, dest["id"])
    assert result["ok"] is False
    assert f"bucket '{missing}' does not exist" in result["diagnosis"], result
    assert "create-bucket" in result["diagnosis"]

    code, cli_result, _ = project.cli_test(dest["id"])
    assert code == 1
    assert cli_result["ok"] is False
    assert "does not exist" in cli_result["diagnosis"]

    # Issue 15 item 3: the failed test is evidence. Was: "healthy" beside the red result.
    shown = project.api.get(f"/v1/destinations/{dest['id']}").json()
    assert shown["status"] == "failing", shown
    assert f"bucket '{missing}' does not exist" in shown["diagnosis"]
    # Once the bucket exists, a passing test clears it (no edit needed).
    s3_server.create_bucket(missing)
    assert api_test(project, dest["id"])["ok"] is True
    shown = project.api.get(f"/v1/destinations/{dest['id']}").json()
    assert shown["status"] == "healthy" and shown["diagnosis"] is None, shown


def test_other_failures_are_diagnosed(project: Project, s3_server: S3Server, bucket: str) -> None:
    # Allowed to write to another bucket only: the policy to attach is spelled out.
    other = s3_server.putonly_user(s3_server.create_bucket())
    dest = create(project, s3_server, bucket, other, name="denied")
    result = api_test(project, "denied")
    assert result["ok"] is False
    assert "Access denied" in result["diagnosis"]
    assert f"arn:aws:s3:::{bucket}/*" in result["diagnosis"]
    assert "s3:PutObject" in result["diagnosis"]
    assert other.secret_access_key not in json.dumps(result)

    # An access key id that IAM does not know.
    unknown = Credentials("AKIAS3DESTUNKNOWN000", "u" * 40)
    create(project, s3_server, bucket, unknown, name="unknown")
    result = api_test(project, "unknown")
    assert result["ok"] is False
    assert "does not recognise the access key id AKIA…N000" in result["diagnosis"]

    assert dest["id"]
    assert project.api.post("/v1/destinations/nope/test").status_code == 404


def test_https_on_a_plain_http_port_names_the_scheme(
    project: Project, s3_server: S3Server, bucket: str
) -> None:
    # moto serves plain HTTP: an https:// endpointUrl on its port never completes TLS.
    # The test makes one attempt, so it must not say "retrying" (issue 14).
    creds = s3_server.putonly_user(bucket)
    https = S3Server(
        s3_server.endpoint.replace("http://", "https://"),
        s3_server.region,
        s3_server.admin_access_key_id,
        s3_server.admin_secret_access_key,
    )
    create(project, https, bucket, creds, name="tls")
    result = api_test(project, "tls")
    assert result["ok"] is False
    assert "retrying" not in result["diagnosis"]
    assert "did not answer in TLS" in result["diagnosis"]
    assert "http://" in result["diagnosis"] and "endpointUrl" in result["diagnosis"]


# -- issue 15 item 3: status from evidence ---------------------------------------------------


def _status(project: Project, ref: str) -> tuple[str, Any]:
    """The destination's status and verifiedAt, as show and list both give them."""
    shown = project.api.get(f"/v1/destinations/{ref}").json()
    listed = {d["id"]: d for d in project.api.get("/v1/destinations").json()["destinations"]}
    assert (listed[shown["id"]]["status"], listed[shown["id"]]["verifiedAt"]) == (
        shown["status"],
        shown["verifiedAt"],
    ), (listed, shown)
    return shown["status"], shown["verifiedAt"]


def test_a_new_destination_is_untested_until_a_connection_test_passes(
    project: Project, s3_server: S3Server, bucket: str
) -> None:
    """Was: a new destination said "healthy" before anything had written to it."""
    dest = create(project, s3_server, bucket, s3_server.putonly_user(bucket))
    assert (dest["status"], dest["verifiedAt"]) == ("untested", None), dest
    assert _status(project, dest["id"]) == ("untested", None)

    before = time.time()
    assert api_test(project, dest["id"])["ok"] is True
    status, verified_at = _status(project, dest["id"])
    assert status == "healthy"
    assert before - 1 <= verified_at <= time.time() + 1, verified_at
    # A later test keeps the first evidence; a test of unsaved values is no evidence.
    assert api_test(project, dest["id"])["ok"] is True
    assert _status(project, dest["id"]) == ("healthy", verified_at)


def test_a_first_delivery_makes_an_untested_destination_healthy(
    project: Project, s3_server: S3Server, bucket: str
) -> None:
    dest = create(project, s3_server, bucket, s3_server.putonly_user(bucket), name="lake")
    assert _status(project, "lake") == ("untested", None)
    # A failed test of unsaved values says nothing about the saved destination.
    draft = project.api.post(
        "/v1/destinations/test", json=_fields(s3_server, bucket, secretAccessKey="x" * 40)
    )
    assert draft.status_code == 200 and draft.json()["ok"] is False, draft.text
    assert _status(project, "lake") == ("untested", None)

    sent = project.api.post("/v1/messages", json=message(1, destination="lake"))
    assert sent.status_code == 202, sent.text
    event_id = sent.json()["accepted"][0]["eventId"]
    record = wait_for_state(project.api, event_id, "delivered")
    status, verified_at = _status(project, dest["id"])
    assert status == "healthy", status
    assert verified_at is not None and verified_at <= record["deliveredAt"] + 1


# -- issue 15 item 3: test before saving, over REST ------------------------------------------


def _fields(s3_server: S3Server, bucket: str, **overrides: Any) -> dict[str, Any]:
    creds = s3_server.putonly_user(bucket)
    return {
        "name": "draft",
        "bucket": bucket,
        "region": s3_server.region,
        "accessKeyId": creds.access_key_id,
        "secretAccessKey": creds.secret_access_key,
        "endpointUrl": s3_server.endpoint,
        **overrides,
    }


def test_settings_are_tested_before_saving(
    project: Project, s3_server: S3Server, bucket: str
) -> None:
    """`POST /v1/destinations/test`: the create body, one PutObject, nothing saved."""
    fields = _fields(s3_server, bucket)  # a PutObject-only user: nothing else is needed
    response = project.api.post("/v1/destinations/test", json=fields)
    assert response.status_code == 200, response.text
    result = response.json()
    assert set(result) == {"ok", "key", "diagnosis", "etag"}, result
    assert result["ok"] is True and result["diagnosis"] is None, result
    assert result["key"].startswith(PREFIX) and result["key"].endswith(".json")
    found = s3_server.client().get_object(Bucket=bucket, Key=result["key"])
    assert found["ETag"] == result["etag"]
    assert fields["secretAccessKey"] not in response.text
    assert project.api.get("/v1/destinations").json()["destinations"] == []  # nothing saved

    wrong = {**fields, "secretAccessKey": fields["secretAccessKey"][:-4] + "ZZZZ"}
    response = project.api.post("/v1/destinations/test", json=wrong)
    assert response.status_code == 200, response.text
    failed = response.json()
    assert failed["ok"] is False and failed["etag"] is None, failed
    assert "secret access key does not belong" in failed["diagnosis"], failed
    assert wrong["secretAccessKey"] not in response.text
    assert fields["secretAccessKey"][:-4] not in response.text
    assert project.api.get("/v1/destinations").json()["destinations"] == []
    keys = [o["Key"] for o in s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == [result["key"]]  # the failed test wrote nothing

    # Audited as the saved destination's test is, with the outcome only.
    entries = project.api.get("/v1/audit", params={"limit": 10}).json()["entries"]
    tested = [e for e in entries if e["action"] == "destination.tested"]
    assert [(e["target"], e["changes"]) for e in tested] == [
        ("destination:new:draft", {"ok": False, "unsaved": True}),
        ("destination:new:draft", {"ok": True, "unsaved": True}),
    ], tested
    assert fields["secretAccessKey"] not in json.dumps(entries)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"bucket": "Not_A_Bucket"}, "bucket"),
        ({"region": None}, "region"),
        ({"storageClass": "COLD"}, "storageClass"),
        ({"keyTemplate": "join('', ["}, "keyTemplate"),
        # SPEC §7: the endpoint policy refuses these on save, and so before saving.
        ({"endpointUrl": "http://169.254.169.254"}, "endpointUrl"),
        ({"endpointUrl": "http://10.0.0.1:9000"}, "endpointUrl"),
        ({"endpointUrl": "http://2130706433:9000", "secretAccessKey": "s" * 40}, None),
    ],
)
def test_settings_tested_before_saving_are_refused_as_a_save_would_be(
    project: Project, s3_server: S3Server, bucket: str, change: dict[str, Any], field: str | None
) -> None:
    """The same 422, naming the same field, as POST /v1/destinations; nothing written."""
    fields = {k: v for k, v in {**_fields(s3_server, bucket), **change}.items() if v is not None}
    tested = project.api.post("/v1/destinations/test", json=fields)
    saved = project.api.post("/v1/destinations", json=fields)
    if field is None:  # 127.0.0.1 spelt as a number: loopback, allowed for the local S3
        assert saved.status_code == 201, saved.text
        assert tested.status_code == 200 and tested.json()["ok"] is False, tested.text
        return
    assert saved.status_code == 422, saved.text
    assert tested.status_code == 422, tested.text
    assert tested.json() == saved.json()
    assert field in tested.json()["error"]["fields"], tested.json()
    assert "Contents" not in s3_server.client().list_objects_v2(Bucket=bucket)


def test_tests_before_saving_share_the_connection_tests_bound(
    project: Project, s3_server: S3Server, bucket: str
) -> None:
    """SPEC §7 fair share: against an endpoint that never answers, at most the project's
    two connection tests run (saved or not); the others are 429 at once."""
    silent = SilentListener()
    try:
        create(project, s3_server, bucket, s3_server.putonly_user(bucket), name="saved")
        project.api.patch("/v1/destinations/saved", json={"endpointUrl": silent.url})
        draft = _fields(s3_server, bucket, endpointUrl=silent.url)
        with ThreadPoolExecutor(6) as pool:
            held = [pool.submit(project.api.post, "/v1/destinations/saved/test")]
            wait_until(lambda: silent.connections >= 1, 10, "the saved test connects")
            drafts = [pool.submit(project.api.post, "/v1/destinations/test", json=draft)]
            wait_until(lambda: silent.connections >= 2, 10, "the draft test connects")
            started = time.monotonic()
            busy = project.api.post("/v1/destinations/test", json=draft)
            assert time.monotonic() - started < 5, "a test beyond the bound waited"
            answers = [f.result() for f in held + drafts]
    finally:
        silent.close()
    assert busy.status_code == 429, busy.text
    assert int(busy.headers["Retry-After"]) >= 1
    assert "S3DEST_PROJECT_CONNECTION_TESTS" in busy.json()["error"]["fields"], busy.json()
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    assert all(a.json()["ok"] is False for a in answers)


# -- issue 15: a change to what a write depends on needs new evidence ------------------------


def _badge(project: Project, name: str) -> str:
    """The status the Destinations page's badge shows for destination `name`."""
    from tests.support.dashboard import sign_in

    key = project.api.headers["Authorization"].removeprefix("Bearer ")
    page = sign_in(project.installation.server.url, key)
    try:
        html = page.get("/destinations").text
    finally:
        page.close()
    card = html[html.index(f">{name}<") :]
    found = re.search(r'data-status="([a-z]+)"', card)
    assert found, card[:500]
    return found.group(1)


def _cli_status(project: Project, name: str) -> tuple[str, Any]:
    """The status and verifiedAt `s3dest destinations list --json` prints."""
    listed = json.loads(
        project.installation.env.cli(
            "destinations", "list", "--project", project.id, "--json"
        ).stdout
    )
    (row,) = [d for d in listed["destinations"] if d["name"] == name]
    return row["status"], row["verifiedAt"]


def test_an_update_of_what_a_write_depends_on_makes_a_healthy_destination_untested(
    project: Project, s3_server: S3Server, bucket: str
) -> None:
    """Was: a destination that had delivered kept saying healthy (with its old verifiedAt)
    after its keys were replaced by wrong ones, until a write failed. Now a change to a
    field a PutObject depends on needs new evidence; a rename or a new key template does
    not. The API, the dashboard's badge and the CLI say the same."""
    creds = s3_server.putonly_user(bucket)
    create(project, s3_server, bucket, creds, name="crm")
    sent = project.api.post("/v1/messages", json=message(1, destination="crm"))
    assert sent.status_code == 202, sent.text
    wait_for_state(project.api, sent.json()["accepted"][0]["eventId"], "delivered")
    status, verified_at = _status(project, "crm")
    assert status == "healthy" and verified_at is not None

    # Not what a write depends on: the evidence still holds.
    for change in ({"name": "crm2"}, {"keyTemplate": "join('/', ['crm', metadata.\"event-id\"])"}):
        project.api.patch(
            "/v1/destinations/crm" if "name" in change else "/v1/destinations/crm2", json=change
        ).raise_for_status()
    assert _status(project, "crm2") == ("healthy", verified_at)
    # The same secret again is no change either.
    project.api.patch(
        "/v1/destinations/crm2", json={"secretAccessKey": creds.secret_access_key}
    ).raise_for_status()
    assert _status(project, "crm2") == ("healthy", verified_at)

    wrong = creds.secret_access_key[:-4] + (
        "AAAA" if not creds.secret_access_key.endswith("AAAA") else "BBBB"
    )
    patched = project.api.patch("/v1/destinations/crm2", json={"secretAccessKey": wrong})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["status"], patched.json()["verifiedAt"]) == ("untested", None)
    assert _status(project, "crm2") == ("untested", None)
    assert _cli_status(project, "crm2") == ("untested", None)
    assert _badge(project, "crm2") == "untested"

    # Evidence again: the right secret and a passing test.
    project.api.patch(
        "/v1/destinations/crm2", json={"secretAccessKey": creds.secret_access_key}
    ).raise_for_status()
    assert _status(project, "crm2") == ("untested", None)
    assert api_test(project, "crm2")["ok"] is True
    status, again = _status(project, "crm2")
    assert status == "healthy" and again is not None and again > verified_at
    assert _cli_status(project, "crm2") == ("healthy", again)
    assert _badge(project, "crm2") == "healthy"

    # Other fields a write depends on (each field of the rule: tests/unit).
    for change in ({"storageClass": "STANDARD_IA"}, {"writeMode": "create-only"}):
        patched = project.api.patch("/v1/destinations/crm2", json=change)
        assert patched.status_code == 200, patched.text
        assert _status(project, "crm2") == ("untested", None), change
        assert api_test(project, "crm2")["ok"] is True
        assert _status(project, "crm2")[0] == "healthy"
    tagged = project.api.patch("/v1/destinations/crm2", json={"tags": {"team": "crm"}})
    assert tagged.status_code == 200, tagged.text
    assert _status(project, "crm2") == ("untested", None)
