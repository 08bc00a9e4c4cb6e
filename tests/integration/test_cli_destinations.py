"""`s3dest projects create` and `s3dest destinations create|list|show|update|delete|test`,
run as a user runs them (subprocesses), next to a running server that sees the same data.
SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import httpx
from tests.support.moto_server import S3Server
from tests.support.s3dest_server import S3destEnv, S3destProcess

MASKED = re.compile(r"^AKIA…[A-Z0-9]{4}$")


def run(env: S3destEnv, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    with_extra = S3destEnv(env.data_dir, env.database_url, {**env.extra, **extra})
    return with_extra.cli(*args, check=False)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(ok(result))


def test_projects_create_prints_the_id_and_key_once(
    s3dest_env: S3destEnv, s3dest_server: S3destProcess
) -> None:
    result = s3dest_env.cli("projects", "create", "acme")
    out = result.stdout
    project_id = re.search(r"project id:\s+(\S+)", out)
    api_key = re.search(r"api key:\s+(s3d_\S+)", out)
    assert project_id and api_key, out
    key = api_key.group(1)
    assert out.count(key) == 1
    assert "cannot be shown again" in out
    assert key not in result.stderr

    # The key works against the server; the listing shows the project but never its key.
    with httpx.Client(base_url=s3dest_server.url, timeout=30) as http:
        response = http.get("/v1/destinations", headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200
    listing = s3dest_env.cli("projects", "list").stdout
    assert project_id.group(1) in listing and "acme" in listing
    assert key not in listing
    # A second project gets another id and another key.
    again = s3dest_env.cli("projects", "create", "acme-2").stdout
    assert project_id.group(1) not in again and key not in again


def test_destinations_end_to_end(
    s3dest_env: S3destEnv,
    s3dest_server: S3destProcess,
    project: tuple[str, str],
    s3_server: S3Server,
    bucket: str,
) -> None:
    project_id, api_key = project
    creds = s3_server.putonly_user(bucket)
    secret = creds.secret_access_key
    wrong = "w" * 40
    outputs: list[str] = []

    def cli(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        result = run(s3dest_env, *args, **extra)
        outputs.append(result.stdout + result.stderr)
        return result

    target = [
        "--bucket",
        bucket,
        "--region",
        s3_server.region,
        "--endpoint-url",
        s3_server.endpoint,
        "--access-key-id",
        creds.access_key_id,
    ]
    # create: the secret from the environment (not the command line), by project name
    created = as_json(
        cli(
            "destinations",
            "create",
            "--project",
            "test",
            "--name",
            "main",
            *target,
            "--key-template",
            "join('/', [metadata.objectName, metadata.\"event-id\"])",
            "--storage-class",
            "standard_ia",
            AWS_SECRET_ACCESS_KEY=secret,
        )
    )
    assert created["name"] == "main"
    assert created["storageClass"] == "STANDARD_IA"
    assert MASKED.match(created["accessKeyId"])
    assert "secretAccessKey" not in created and "sessionToken" not in created
    # ... or as an option, by project id
    second = as_json(
        cli(
            "destinations",
            "create",
            "--project",
            project_id,
            "--name",
            "second",
            *target,
            "--secret-access-key",
            secret,
            "--write-mode",
            "create-only",
            "--disabled",
        )
    )
    assert second["writeMode"] == "create-only" and second["enabled"] is False

    # invalid input: exit 2, every wrong field named with its fix; a duplicate: exit 1
    bad = cli(
        "destinations",
        "create",
        "--project",
        project_id,
        "--name",
        "bad",
        "--bucket",
        "Bad_Bucket",
        *target[2:],
        "--storage-class",
        "frozen",
        AWS_SECRET_ACCESS_KEY=secret,
    )
    assert bad.returncode == 2, bad.stderr
    assert re.search(r"^\s+bucket: .*lower-case", bad.stderr, re.M), bad.stderr
    assert re.search(r"^\s+storageClass: .*use one of", bad.stderr, re.M), bad.stderr
    duplicate = cli(
        "destinations",
        "create",
        "--project",
        project_id,
        "--name",
        "main",
        *target,
        AWS_SECRET_ACCESS_KEY=secret,
    )
    assert duplicate.returncode == 1
    assert "already exists" in duplicate.stderr

    # list and show (by name and by id); the server sees what the CLI made
    listing = ok(cli("destinations", "list", "--project", project_id))
    header, *lines = listing.splitlines()  # a table: NAME first, under a header row
    assert header.split()[:2] == ["NAME", "ID"]
    assert [line.split()[0] for line in lines] == ["main", "second"]
    assert created["id"] in listing and f"s3://{bucket}" in listing
    # Nothing has written to "main" yet: untested, with what to do (issue 15 item 3).
    assert "disabled" in lines[1] and "untested" in lines[0]
    assert "not tested yet: run `s3dest destinations test NAME`" in lines[0]
    by_name = as_json(cli("destinations", "show", "--project", project_id, "main"))
    by_id = as_json(cli("destinations", "show", "--project", project_id, created["id"]))
    assert by_name == by_id == {**created, "warnings": []}
    with httpx.Client(
        base_url=s3dest_server.url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30
    ) as http:
        assert http.get("/v1/destinations/main").json() == by_name
    missing = cli("destinations", "show", "--project", project_id, "nope")
    assert missing.returncode == 1 and "no destination 'nope'" in missing.stderr

    # test
    tested = cli("destinations", "test", "--project", project_id, "main")
    result = as_json(tested)
    assert result["ok"] is True and result["key"].startswith("s3dest-connection-test/")

    # update: one field; then only the secret (a wrong one: the test now fails)
    updated = as_json(
        cli("destinations", "update", "--project", project_id, "main", "--storage-class", "glacier")
    )
    assert updated["storageClass"] == "GLACIER"
    assert updated["keyTemplate"] == created["keyTemplate"]
    ok(cli("destinations", "update", "--project", project_id, "main", "--secret-access-key", wrong))
    failing = cli("destinations", "test", "--project", project_id, "main")
    assert failing.returncode == 1
    assert "secret access key does not belong" in json.loads(failing.stdout)["diagnosis"]
    refused = cli("destinations", "update", "--project", project_id, "main", "--region", "US WEST")
    assert refused.returncode == 2 and "region:" in refused.stderr
    with httpx.Client(
        base_url=s3dest_server.url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30
    ) as http:
        after = http.get("/v1/destinations/main").json()
    assert after["region"] == s3_server.region and after["storageClass"] == "GLACIER"
    cleared = as_json(
        cli("destinations", "update", "--project", project_id, "main", "--clear-key-template")
    )
    assert cleared["keyTemplate"] is None

    # delete: refused while a message waits for the (disabled) destination, unless --force
    with httpx.Client(
        base_url=s3dest_server.url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30
    ) as http:
        sent = http.post(
            "/v1/messages",
            json={
                "destination": "second",
                "action": "read",
                "provider": "hubspot",
                "objectName": "contacts",
                "installationId": "inst-1",
                "result": [{"fields": {"id": "1"}}],
            },
        )
        assert sent.status_code == 202, sent.text
    refused = cli("destinations", "delete", "--project", project_id, "second")
    assert refused.returncode == 1
    assert "waiting to be delivered" in refused.stderr and "--force" in refused.stderr
    assert "deleted" in ok(
        cli("destinations", "delete", "--project", project_id, "second", "--force")
    )
    assert "deleted" in ok(cli("destinations", "delete", "--project", project_id, "main"))
    gone = cli("destinations", "delete", "--project", project_id, "main")
    assert gone.returncode == 1 and "no destination" in gone.stderr
    listed = httpx.get(
        f"{s3dest_server.url}/v1/destinations",
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=30,
    )
    assert listed.json() == {"destinations": []}

    # No command ever printed a secret.
    for output in outputs:
        assert secret not in output and wrong not in output
