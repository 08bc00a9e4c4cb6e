"""The CLI managing a real `s3dest serve` through its REST API (`--url`/`--api-key`,
issue 15 item 8), SQLite and PostgreSQL. The CLI runs in-process (click's runner) with
no access to the server's data directory, so every answer must have come over HTTP; the
server's own database then shows what the commands did.

Also, as a user first meets them: `s3dest serve` prints the URL it listens on, and the
first command on a new data directory prints no migration log lines.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine
from tests.support.builders import create_destination, message
from tests.support.moto_server import S3Server
from tests.support.polling import wait_for_state, wait_until
from tests.support.s3dest_server import S3DEST, S3destEnv, S3destProcess

from s3dest.access import apikeys
from s3dest.cli import main
from s3dest.destinations import service as destination_service
from s3dest.runtime import open_engine
from s3dest.settings import Settings
from s3dest.store.projects import create_project

MANIFEST = """\
specVersion: 1.0.0
integrations:
  - name: hubspotToS3
    provider: hubspot
    read:
      objects:
        - objectName: contacts
          destination: ampersandS3Bucket
"""


@pytest.fixture
def server_engine(s3dest_env: S3destEnv, s3dest_server: S3destProcess) -> Iterator[Engine]:
    """The server's database, opened in this process (once the server has migrated it)."""
    engine = open_engine(
        Settings(data_dir=s3dest_env.data_dir, database_url=s3dest_env.database_url),
        migrate=False,
    )
    yield engine
    engine.dispose()


@pytest.fixture
def project(server_engine: Engine) -> tuple[str, str]:
    """(project id, API key), made in this process: one subprocess fewer than conftest's."""
    created = create_project(server_engine, "remote")
    return created.project.id, created.api_key


@pytest.fixture
def remote(s3dest_server: S3destProcess, project: tuple[str, str], tmp_path: Path) -> CliRunner:
    """A runner whose environment (during each call) points at the server, and at an empty
    data directory of its own: local mode there would find no project."""
    return CliRunner(
        env={
            "S3DEST_DATA_DIR": str(tmp_path / "elsewhere"),
            "S3DEST_DATABASE_URL": None,
            "S3DEST_PROJECT": None,
            "S3DEST_URL": s3dest_server.url,
            "S3DEST_API_KEY": project[1],
        }
    )


def _local(env: S3destEnv, project_id: str | None = None) -> CliRunner:
    """A runner in local mode on the server's own database."""
    return CliRunner(
        env={
            "S3DEST_DATA_DIR": str(env.data_dir),
            "S3DEST_DATABASE_URL": env.database_url,
            "S3DEST_PROJECT": project_id,
            "S3DEST_URL": None,
            "S3DEST_API_KEY": None,
        }
    )


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.output, result.stderr, result.exception)
    return result.stdout


def test_management_commands_reach_a_remote_server(
    remote: CliRunner,
    s3dest_server: S3destProcess,
    s3dest_env: S3destEnv,
    server_engine: Engine,
    project: tuple[str, str],
    tmp_path: Path,
) -> None:
    def cli(*args: str) -> Result:
        return remote.invoke(main, list(args))

    created = json.loads(
        ok(
            cli(
                "destinations",
                "create",
                "--name",
                "ampersandS3Bucket",
                "--bucket",
                "ampersand-integration-bucket",
                "--region",
                "us-west-2",
                "--access-key-id",
                "AKIAIOSFODNN7EXAMPLE",
                "--secret-access-key",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            )
        )
    )
    assert created["accessKeyId"] == "AKIA…MPLE"
    header, row = ok(cli("destinations", "list")).splitlines()
    assert header.split()[:2] == ["NAME", "ID"] and row.split()[:2] == [
        "ampersandS3Bucket",
        created["id"],
    ]
    updated = json.loads(ok(cli("destinations", "update", "ampersandS3Bucket", "--disabled")))
    assert updated["enabled"] is False and updated["status"] == "disabled"
    assert json.loads(ok(cli("destinations", "show", created["id"])))["enabled"] is False

    amp = tmp_path / "amp.yaml"
    amp.write_text(MANIFEST)
    applied = json.loads(ok(cli("manifest", "apply", str(amp), "--json")))
    assert applied["manifest"]["integrations"][0]["name"] == "hubspotToS3"
    assert json.loads(ok(cli("deliveries", "list", "--json"))) == {
        "deliveries": [],
        "nextCursor": None,
    }
    # Three messages wait for the disabled destination: pages of two, and the filters.
    message = {
        "destination": "ampersandS3Bucket",
        "action": "read",
        "provider": "hubspot",
        "installationId": "085353b1-07f1-4209-b471-7e028c0a68c8",
        "result": [{"raw": {"id": "438"}}],
    }
    with s3dest_server.client(project[1]) as client:
        sent = client.send_batch(
            [{**message, "objectName": name} for name in ("contacts", "contacts", "companies")]
        )
    first = cli("deliveries", "list", "--limit", "2")
    header, *rows = ok(first).splitlines()
    assert header.split()[:2] == ["EVENT", "ID"] and len(rows) == 2
    more = re.search(r"--cursor (\S+)", first.stderr)
    assert more is not None, first.stderr
    rest = json.loads(ok(cli("deliveries", "list", "--cursor", more[1], "--json")))
    seen = [r.split()[0] for r in rows] + [d["eventId"] for d in rest["deliveries"]]
    assert sorted(seen) == sorted(a["eventId"] for a in sent) and rest["nextCursor"] is None
    contacts = json.loads(ok(cli("deliveries", "list", "--object", "contacts", "--json")))
    assert {d["objectName"] for d in contacts["deliveries"]} == {"contacts"}
    assert len(contacts["deliveries"]) == 2
    bad_time = cli("deliveries", "list", "--since", "yesterday")
    assert bad_time.exit_code == 2 and "  --since: " in bad_time.stderr, bad_time.stderr
    # Local mode on the server's database prints the same page.
    local = _local(s3dest_env)
    local_page = local.invoke(main, ["deliveries", "list", "--object", "contacts", "--json"])
    local_ids = [d["eventId"] for d in json.loads(ok(local_page))["deliveries"]]
    assert local_ids == [d["eventId"] for d in contacts["deliveries"]]  # the records live on
    unknown = cli("deliveries", "list", "--destination", "nope")
    assert unknown.exit_code == 2 and "--destination" in unknown.stderr, unknown.stderr

    added = json.loads(ok(cli("projects", "keys", "add", "--name", "ci", "--json")))
    assert added["key"].startswith("s3d_")
    keys = ok(cli("projects", "keys", "list")).splitlines()
    assert keys[0].split()[:3] == ["ID", "PREFIX", "NAME"] and len(keys) == 3
    assert ok(cli("projects", "keys", "revoke", "ci")).startswith(f"revoked {added['id']}")

    # The server's own database saw all of it.
    rows = destination_service.list_(server_engine, project_id=project[0])
    assert [(r.name, r.enabled) for r in rows] == [("ampersandS3Bucket", False)]
    assert [k.name for k in apikeys.list_(server_engine, project_id=project[0])] == ["default"]
    with httpx.Client(base_url=s3dest_server.url, timeout=30) as http:
        refused = http.get("/v1/destinations", headers={"Authorization": f"Bearer {added['key']}"})
        assert refused.status_code == 401

    # `serve` said where it listens.
    assert re.search(
        rf"^s3dest is serving on {re.escape(s3dest_server.url)}\b", s3dest_server.log(), re.M
    )


def test_the_first_command_prints_no_migration_lines(tmp_path: Path) -> None:
    """Alembic logged seven INFO lines ("setup plugin …") while it was imported, before
    s3dest lowered its level. (The import is the same on PostgreSQL: one database here.)"""
    env = S3destEnv(data_dir=tmp_path / "data").env()
    env.pop("S3DEST_URL", None)
    result = subprocess.run(
        [*S3DEST, "projects", "create", "acme"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "project id:" in result.stdout
    assert result.stderr == "", result.stderr


def test_send_with_a_key_export_and_redeliver_locally_and_remotely(
    remote: CliRunner,
    s3dest_server: S3destProcess,
    s3dest_env: S3destEnv,
    project: tuple[str, str],
    s3_server: S3Server,
    bucket: str,
    tmp_path: Path,
) -> None:
    """Were missing: `send --idempotency-key`, `deliveries export` and `deliveries
    redeliver` (the API had them; the CLI did not)."""

    def cli(*args: str, runner: CliRunner = remote) -> Result:
        return runner.invoke(main, list(args))

    local = _local(s3dest_env, project[0])
    with s3dest_server.client(project[1]) as client:
        create_destination(client, s3_server, bucket, "lake")
        messages = tmp_path / "messages.jsonl"
        messages.write_text(
            "\n".join(json.dumps(message(i, "lake", objectName=f"obj{i % 2}")) for i in range(3))
        )
        # Two requests (KEY, KEY/2); the same command again stores nothing and says the same.
        sent = [
            json.loads(ok(cli("send", str(messages), "--idempotency-key", "file-1", *extra)))
            for extra in (("--batch-size", "2", "--json"), ("--batch-size", "2", "--json"))
        ]
        assert sent[0] == sent[1] and len(sent[0]["accepted"]) == 3
        ids = [a["eventId"] for a in sent[0]["accepted"]]
        for event_id in ids:
            wait_for_state(client, event_id, "delivered")
        every = json.loads(ok(cli("deliveries", "list", "--json")))["deliveries"]
        assert sorted(d["eventId"] for d in every) == sorted(ids)  # three, not six

        # Export: the same records in each mode, with the list's filters.
        lines = ok(cli("deliveries", "export", "--object", "obj0")).splitlines()
        assert sorted(json.loads(line)["eventId"] for line in lines) == sorted([ids[0], ids[2]])
        assert ok(cli("deliveries", "export", "--object", "obj0", runner=local)).splitlines() == (
            lines
        )
        out = tmp_path / "deliveries.csv"
        ok(cli("deliveries", "export", "--format", "csv", "-o", str(out)))
        header, *rows = out.read_text().splitlines()
        assert "eventId" in header.split(",") and len(rows) == 3
        bad = cli("deliveries", "export", "--since", "yesterday")
        assert bad.exit_code == 2 and "  --since: " in bad.stderr, bad.stderr

        # Re-delivery: one by id (remote), then a time range (local).
        again = json.loads(ok(cli("deliveries", "redeliver", ids[0], "--json")))
        assert (again["redelivered"], again["eventIds"]) == (1, [ids[0]])
        record = wait_until(
            lambda: (
                (r := client.message(ids[0]))["state"] == "delivered" and r["attempts"] > 1 and r
            ),
            timeout=60,
        )
        assert record["attempts"] == 2
        ranged = cli("deliveries", "redeliver", "--since", "0", "--object", "obj1", runner=local)
        assert ok(ranged).startswith("queued 1 message(s)"), ranged.stdout
        nothing = cli("deliveries", "redeliver", "01962203-0000-7000-8000-000000000000")
        assert nothing.exit_code == 1 and "no such message" in nothing.stderr, nothing.stderr
        for args in ((), (ids[0], "--since", "0")):
            usage = cli("deliveries", "redeliver", *args)
            assert usage.exit_code == 2 and "Traceback" not in usage.output, usage.output
        unbounded = cli("deliveries", "redeliver", "--object", "obj1")
        assert unbounded.exit_code == 2 and "  --since: " in unbounded.stderr, unbounded.stderr
        used = cli("send", str(messages), "--idempotency-key", "file-1")
        assert used.exit_code == 2 and "Idempotency-Key" in used.stderr, used.stderr
