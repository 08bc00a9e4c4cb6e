"""`s3dest destinations create|update|show|list` with the batching options (SPEC §9), in
local mode (on the server's database) and remote mode (over its REST API), on SQLite and
PostgreSQL. The CLI runs in-process (click's runner); the server then shows what it did."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine
from tests.support.s3dest_server import S3destEnv, S3destProcess

from s3dest.batching import BatchSettings
from s3dest.cli import main
from s3dest.runtime import open_engine
from s3dest.settings import Settings
from s3dest.store.projects import create_project

DEFAULTS = BatchSettings().to_api()
KEYS = [
    "--bucket",
    "ampersand-integration-bucket",
    "--region",
    "us-west-2",
    "--access-key-id",
    "AKIAIOSFODNN7EXAMPLE",
    "--secret-access-key",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
]


@pytest.fixture
def project(s3dest_env: S3destEnv, s3dest_server: S3destProcess) -> Iterator[tuple[str, str]]:
    """(project id, API key) on the server's database (once the server has migrated it)."""
    engine: Engine = open_engine(
        Settings(data_dir=s3dest_env.data_dir, database_url=s3dest_env.database_url),
        migrate=False,
    )
    try:
        created = create_project(engine, "batching")
    finally:
        engine.dispose()
    yield created.project.id, created.api_key


def _runner(
    env: S3destEnv, s3dest_server: S3destProcess, mode: str, project: tuple[str, str]
) -> CliRunner:
    if mode == "remote":  # an empty data directory of its own: only HTTP reaches the server
        return CliRunner(
            env={
                "S3DEST_DATA_DIR": str(Path(env.data_dir).parent / "elsewhere"),
                "S3DEST_DATABASE_URL": None,
                "S3DEST_PROJECT": None,
                "S3DEST_URL": s3dest_server.url,
                "S3DEST_API_KEY": project[1],
            }
        )
    return CliRunner(
        env={
            "S3DEST_DATA_DIR": str(env.data_dir),
            "S3DEST_DATABASE_URL": env.database_url,
            "S3DEST_PROJECT": project[0],
            "S3DEST_URL": None,
            "S3DEST_API_KEY": None,
        }
    )


def _json(result: Result) -> Any:
    assert result.exit_code == 0, (result.output, result.stderr, result.exception)
    return json.loads(result.stdout)


@pytest.mark.parametrize("mode", ["local", "remote"])
def test_batch_options_round_trip(
    mode: str,
    s3dest_env: S3destEnv,
    s3dest_server: S3destProcess,
    project: tuple[str, str],
) -> None:
    runner = _runner(s3dest_env, s3dest_server, mode, project)

    def cli(*args: str) -> Result:
        return runner.invoke(main, list(args))

    def served(name: str) -> Any:
        """What the server itself shows (whichever way the CLI reached it)."""
        with httpx.Client(
            base_url=s3dest_server.url, headers={"Authorization": f"Bearer {project[1]}"}
        ) as http:
            response = http.get(f"/v1/destinations/{name}")
            assert response.status_code == 200, response.text
            return response.json()["batch"]

    plain = _json(cli("destinations", "create", "--name", "plain", *KEYS))
    assert plain["batch"] is None

    created = _json(
        cli(
            "destinations",
            "create",
            "--name",
            "lake",
            *KEYS,
            "--batch-max-messages",
            "500",
            "--batch-max-bytes",
            "2048",
            "--batch-compression",
            "zstd",
        )
    )
    want = {**DEFAULTS, "maxMessages": 500, "maxBytes": 2048, "compression": "zstd"}
    assert created["batch"] == want
    assert served("lake") == want
    assert _json(cli("destinations", "show", "lake"))["batch"] == want
    listed = _json(cli("destinations", "list", "--json"))["destinations"]
    assert {d["name"]: d["batch"] for d in listed} == {"lake": want, "plain": None}

    # update sends only what it is given: the other values stay.
    updated = _json(cli("destinations", "update", "lake", "--batch-max-seconds", "2.5"))
    want = {**want, "maxSeconds": 2.5}
    assert updated["batch"] == want == served("lake")
    # An update without batch options leaves it alone.
    assert _json(cli("destinations", "update", "lake", "--disabled"))["batch"] == want
    assert _json(cli("destinations", "update", "lake", "--no-batch"))["batch"] is None
    assert served("lake") is None
    # --batch alone: on, with the defaults.
    assert _json(cli("destinations", "update", "plain", "--batch"))["batch"] == DEFAULTS
    assert served("plain") == DEFAULTS

    # Out of range: refused (exit 2), naming the field and its range; nothing changed.
    refused = cli("destinations", "update", "plain", "--batch-max-messages", "0")
    assert refused.exit_code == 2, refused.output
    assert "batch.maxMessages" in refused.stderr and "from 1 to 10,000" in refused.stderr
    assert served("plain") == DEFAULTS
    # --no-batch with a value contradicts itself: a usage error before anything is sent.
    both = cli("destinations", "update", "plain", "--no-batch", "--batch-max-seconds", "5")
    assert both.exit_code == 2 and "--no-batch" in both.output
    assert served("plain") == DEFAULTS
