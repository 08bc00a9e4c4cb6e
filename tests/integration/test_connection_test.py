"""The connection test (`POST /v1/destinations/{id}/test`, `s3dest destinations test`):
one small, clearly named object written with PutObject only, and a plain-language
diagnosis when it cannot be written. Real moto S3 with IAM enforced; SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from tests.support.moto_server import Credentials, S3Server
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

    assert project.api.get(f"/v1/destinations/{dest['id']}").json()["status"] == "healthy"
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
