"""Credentials at rest: encrypted in the database under a key kept outside it, rotatable,
and never returned, printed or logged.

The leak test runs a full create → test → deliver → update → delete cycle against a real
`s3dest serve` (debug logging on) and the CLI, then greps every byte it can find for the
secrets: the raw database (SQLite files and WAL; PostgreSQL's rows, its WAL and the
database's files), every API response and CLI output, and the server's log.
"""

from __future__ import annotations

import base64
import secrets
import stat
import string
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import select
from tests.support.moto_server import Credentials, S3Server
from tests.support.postgres import PostgresCluster
from tests.support.s3dest_server import S3destEnv, serve

from s3dest.access import audit
from s3dest.destinations import service
from s3dest.destinations.schemas import parse_create
from s3dest.destinations.secrets import SecretBox, generate_key, key_id
from s3dest.runtime import open_engine
from s3dest.settings import Settings
from s3dest.store.projects import create_project, hash_key
from s3dest.store.tables import destinations


def random_secret(length: int = 40) -> str:
    alphabet = string.ascii_letters + string.digits + "/+"
    return "".join(secrets.choice(alphabet) for _ in range(length))


def session_token() -> str:
    # Shaped like an STS token: long, base64-ish, distinctive.
    return "IQoJb3JpZ2luX2VjE" + base64.b64encode(secrets.token_bytes(300)).decode()


def fragments(secret: str) -> list[bytes]:
    """The secret and pieces of it, so a truncated or partial leak is caught too."""
    raw = secret.encode()
    return [raw, raw[:16], raw[-16:], raw[len(raw) // 2 - 8 : len(raw) // 2 + 8]]


def assert_absent(haystack: bytes, secrets_: Iterable[str], where: str) -> None:
    for secret in secrets_:
        for piece in fragments(secret):
            assert piece not in haystack, f"a secret ({piece[:4]!r}…) leaked into {where}"


def stored_tokens(settings: Settings) -> dict[str, tuple[str, str | None]]:
    """name → (secret_access_key_enc, session_token_enc), read straight from the table."""
    engine = open_engine(settings, migrate=False)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(
                    destinations.c.name,
                    destinations.c.secret_access_key_enc,
                    destinations.c.session_token_enc,
                )
            ).all()
    finally:
        engine.dispose()
    return {r.name: (r.secret_access_key_enc, r.session_token_enc) for r in rows}


def token_key_id(token: str) -> str:
    version, kid, _ = token.split(":")
    assert version == "v1"
    return kid


def raw_database(env: S3destEnv, cluster: PostgresCluster | None) -> bytes:
    """Every byte of the database s3dest uses, as stored."""
    if env.database_url is None:
        files = sorted(p for p in env.data_dir.rglob("*") if p.is_file())
        names = {p.name for p in files}
        assert "s3dest.db" in names, names
        return b"\n".join(p.read_bytes() for p in files)
    assert cluster is not None
    conninfo = env.database_url.replace("postgresql+psycopg://", "postgresql://")
    chunks: list[bytes] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        # Logically: every column of every row of every table.
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
            )
        ]
        assert "destinations" in tables, tables
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        chunks.append(bytes(value))
                    elif value is not None:
                        chunks.append(str(value).encode())
        # Physically: the database's files and the WAL, after a checkpoint.
        conn.execute("CHECKPOINT")
        oid = conn.execute(
            "SELECT oid FROM pg_database WHERE datname = current_database()"
        ).fetchone()
        assert oid is not None
    for directory in (cluster.data_dir / "base" / str(oid[0]), cluster.data_dir / "pg_wal"):
        for path in sorted(directory.iterdir()):
            if path.is_file():
                chunks.append(path.read_bytes())
    return b"\n".join(chunks)


class Recorder:
    """An HTTP client that keeps every response (status line, headers and body)."""

    def __init__(self, url: str, api_key: str) -> None:
        self.http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {api_key}"}, timeout=60
        )
        self.seen: list[bytes] = []

    def __call__(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.http.request(method, path, **kwargs)
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        self.seen.append(f"{response.status_code}\n{headers}\n".encode() + response.content)
        return response


def test_secrets_never_leave_the_vault(
    s3dest_env: S3destEnv,
    tmp_path: Path,
    s3_server: S3Server,
    bucket: str,
    request: pytest.FixtureRequest,
) -> None:
    """Every secret s3dest is given, the project's API key among them, is absent from the
    database, the responses, the CLI's output and the log.

    Catches the planted bug "the API key stored in plain text instead of its hash" (issue
    17; `store.projects.hash_key` returning the key): the key is found in the database.
    """
    cluster: PostgresCluster | None = (
        request.getfixturevalue("postgres_cluster") if s3dest_env.database_url else None
    )
    s3dest_env.extra["S3DEST_LOG_LEVEL"] = "DEBUG"
    settings = Settings(data_dir=s3dest_env.data_dir, database_url=s3dest_env.database_url)
    engine = open_engine(settings)
    created = create_project(engine, "vault")
    engine.dispose()
    project_id, api_key = created.project.id, created.api_key
    creds = s3_server.putonly_user(bucket)
    wrong_secret = random_secret()
    temp_secret = random_secret()
    token, token2 = session_token(), session_token()
    pasted = "wJalr" + random_secret(35)  # a secret pasted into the access key id field
    rejected = random_secret()  # the secret of a create that fails validation
    all_secrets = [creds.secret_access_key, wrong_secret, temp_secret, token, token2, pasted]
    all_secrets.append(rejected)
    all_secrets.append(api_key)  # only its SHA-256 may be stored
    outputs: list[bytes] = []

    server = serve(s3dest_env, tmp_path)
    try:
        call = Recorder(server.url, api_key)
        main = {
            "name": "main",
            "bucket": bucket,
            "region": s3_server.region,
            "endpointUrl": s3_server.endpoint,
            "accessKeyId": creds.access_key_id,
            "secretAccessKey": creds.secret_access_key,
        }
        temp = {
            **main,
            "name": "temp",
            "accessKeyId": "ASIAS3DESTTEMPORARY1",
            "secretAccessKey": temp_secret,
            "sessionToken": token,
        }
        # create
        assert call("POST", "/v1/destinations", json=main).status_code == 201
        assert call("POST", "/v1/destinations", json=temp).status_code == 201
        bad = call(
            "POST",
            "/v1/destinations",
            json={**temp, "name": "bad", "bucket": "Not A Bucket", "secretAccessKey": rejected},
        )
        assert bad.status_code == 422
        on_aws = {k: v for k, v in main.items() if k != "endpointUrl"}
        bad = call(
            "POST", "/v1/destinations", json={**on_aws, "name": "bad", "accessKeyId": pasted}
        )
        assert bad.status_code == 422
        assert "accessKeyId" in bad.json()["error"]["fields"]
        dup = call("POST", "/v1/destinations", json=temp)
        assert dup.status_code == 409

        # test
        assert call("POST", "/v1/destinations/main/test").json()["ok"] is True
        failed = call("POST", "/v1/destinations/temp/test").json()
        assert failed["ok"] is False and failed["diagnosis"]

        # deliver: one message that lands and one the worker cannot write
        sent = call(
            "POST",
            "/v1/messages",
            json={
                "messages": [
                    {
                        "destination": name,
                        "action": "read",
                        "provider": "hubspot",
                        "objectName": "contacts",
                        "installationId": "inst-1",
                        "operationId": f"op-{name}",
                        "result": [{"fields": {"id": "1"}}],
                    }
                    for name in ("main", "temp")
                ]
            },
        )
        assert sent.status_code == 202, sent.text
        delivered_id, held_id = (a["eventId"] for a in sent.json()["accepted"])
        deadline = time.monotonic() + 60
        states: tuple[str, str] = ("", "")
        while time.monotonic() < deadline:
            states = (
                call("GET", f"/v1/messages/{delivered_id}").json()["state"],
                call("GET", f"/v1/messages/{held_id}").json()["state"],
            )
            if states[0] == "delivered" and states[1] in ("held", "retrying"):
                break
            time.sleep(0.2)
        assert states[0] == "delivered", states
        call("GET", "/v1/deliveries")

        # update: a wrong secret, the right one again, a new session token
        assert call(
            "PATCH", "/v1/destinations/main", json={"secretAccessKey": wrong_secret}
        ).is_success
        assert call("POST", "/v1/destinations/main/test").json()["ok"] is False
        assert call(
            "PATCH", "/v1/destinations/main", json={"secretAccessKey": creds.secret_access_key}
        ).is_success
        assert call("POST", "/v1/destinations/main/test").json()["ok"] is True
        assert call("PATCH", "/v1/destinations/temp", json={"sessionToken": token2}).is_success
        rejected_patch = call(
            "PATCH", "/v1/destinations/temp", json={"sessionToken": token, "region": "Nowhere"}
        )
        assert rejected_patch.status_code == 422
        call("GET", "/v1/destinations")
        call("GET", "/v1/destinations/temp")

        # the CLI's views of the same destinations
        for args in (
            ("destinations", "show", "--project", project_id, "temp"),
            ("destinations", "test", "--project", project_id, "temp"),
        ):
            result = s3dest_env.cli(*args, check=False)
            outputs.append(result.stdout.encode() + result.stderr.encode())

        # The stored rows hold ciphertext only, and the raw database shows none of it.
        tokens = stored_tokens(settings)
        assert tokens["temp"][1] is not None and tokens["temp"][1].startswith("v1:")
        assert tokens["main"][0].startswith("v1:")
        raw = raw_database(s3dest_env, cluster)
        assert creds.access_key_id.encode() in raw  # the grep really sees our rows
        assert hash_key(api_key).encode() in raw  # ... and the API keys' table
        assert_absent(raw, all_secrets, "the database")

        # delete
        assert call("DELETE", "/v1/destinations/main").status_code == 204
        assert call("DELETE", "/v1/destinations/temp").status_code == 409  # one is held
        assert call("DELETE", "/v1/destinations/temp?force=true").status_code == 204
        assert call("GET", "/v1/destinations").json() == {"destinations": []}
        raw = raw_database(s3dest_env, cluster)
        assert_absent(raw, all_secrets, "the database after deletion")
        call.http.close()
    finally:
        server.kill()

    log = server.log().encode()
    assert b'"level":"debug"' in log or b"worker started" in log  # the log was captured
    assert_absent(log, all_secrets, "the server's log")
    responses = b"\n".join(call.seen)
    assert creds.access_key_id[-4:].encode() in responses
    assert_absent(responses, all_secrets, "an API response")
    assert_absent(b"\n".join(outputs), all_secrets, "the CLI's output")


def new_project(settings: Settings, name: str) -> str:
    engine = open_engine(settings)
    try:
        return create_project(engine, name).project.id
    finally:
        engine.dispose()


def destination_body(s3_server: S3Server, bucket: str, creds: Credentials) -> dict[str, Any]:
    return {
        "bucket": bucket,
        "region": s3_server.region,
        "endpointUrl": s3_server.endpoint,
        "accessKeyId": creds.access_key_id,
        "secretAccessKey": creds.secret_access_key,
    }


def test_key_file_is_private_and_rotates(
    s3dest_env: S3destEnv, s3_server: S3Server, bucket: str
) -> None:
    """Without S3DEST_SECRET_KEY a key file is made (0600); `secrets rotate --new-key`
    adds a newer key and re-encrypts every row under it."""
    creds = s3_server.putonly_user(bucket)
    settings = Settings(data_dir=s3dest_env.data_dir, database_url=s3dest_env.database_url)
    project_id = new_project(settings, "keys")
    env = S3destEnv(
        s3dest_env.data_dir,
        s3dest_env.database_url,
        {**s3dest_env.extra, "AWS_SECRET_ACCESS_KEY": creds.secret_access_key},
    )
    env.cli(
        "destinations",
        "create",
        "--project",
        project_id,
        "--name",
        "main",
        "--bucket",
        bucket,
        "--region",
        s3_server.region,
        "--endpoint-url",
        s3_server.endpoint,
        "--access-key-id",
        creds.access_key_id,
    )

    key_file = env.data_dir / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    first = key_file.read_text().split()
    assert len(first) == 1
    old_kid = key_id(base64.urlsafe_b64decode(first[0]))
    assert token_key_id(stored_tokens(settings)["main"][0]) == old_kid

    out = env.cli("secrets", "rotate", "--new-key").stdout
    keys = key_file.read_text().split()
    assert len(keys) == 2 and keys[1] == first[0]  # newest first, the old one kept
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    new_kid = key_id(base64.urlsafe_b64decode(keys[0]))
    assert new_kid != old_kid
    assert f"re-encrypted 1 destination(s) under key {new_kid}" in out
    assert token_key_id(stored_tokens(settings)["main"][0]) == new_kid
    assert creds.secret_access_key not in out

    result = env.cli("destinations", "test", "--project", project_id, "main", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"ok": true' in result.stdout


def test_env_keys_newest_first_and_rotation(
    s3dest_env: S3destEnv, s3_server: S3Server, bucket: str
) -> None:
    """S3DEST_SECRET_KEY=<new>,<old>: the newest encrypts, every key decrypts, and
    `secrets rotate` moves every row to the newest key."""
    creds = s3_server.putonly_user(bucket)
    old, new = generate_key(), generate_key()
    old_kid = key_id(base64.urlsafe_b64decode(old))
    new_kid = key_id(base64.urlsafe_b64decode(new))
    settings = Settings(data_dir=s3dest_env.data_dir, database_url=s3dest_env.database_url)
    project_id = new_project(settings, "keys")

    def with_keys(value: str) -> S3destEnv:
        return S3destEnv(
            s3dest_env.data_dir,
            s3dest_env.database_url,
            {**s3dest_env.extra, "S3DEST_SECRET_KEY": value},
        )

    def connection_test(env: S3destEnv, name: str) -> Any:
        return env.cli("destinations", "test", "--project", project_id, name, check=False)

    # A destination saved while only the old key was configured (what `serve` or the CLI
    # does with S3DEST_SECRET_KEY=<old>: the same service, the same box).
    engine = open_engine(settings, migrate=False)
    body = destination_body(s3_server, bucket, creds)
    try:
        service.create(
            engine,
            SecretBox.from_keys([old]),
            project_id=project_id,
            body=parse_create({**body, "name": "early"}),
            actor=audit.CLI,
        )
    finally:
        engine.dispose()
    assert token_key_id(stored_tokens(settings)["early"][0]) == old_kid

    both = with_keys(f"{new},{old}")
    env = S3destEnv(
        both.data_dir,
        both.database_url,
        {**both.extra, "AWS_SECRET_ACCESS_KEY": creds.secret_access_key},
    )
    env.cli(
        "destinations",
        "create",
        "--project",
        project_id,
        "--name",
        "late",
        "--bucket",
        bucket,
        "--region",
        s3_server.region,
        "--endpoint-url",
        s3_server.endpoint,
        "--access-key-id",
        creds.access_key_id,
    )
    tokens = stored_tokens(settings)
    assert token_key_id(tokens["early"][0]) == old_kid
    assert token_key_id(tokens["late"][0]) == new_kid  # the newest encrypts
    result = connection_test(both, "early")  # old rows decrypt
    assert result.returncode == 0, result.stdout + result.stderr

    out = both.cli("secrets", "rotate").stdout
    assert f"re-encrypted 1 destination(s) under key {new_kid}" in out
    assert {token_key_id(t[0]) for t in stored_tokens(settings).values()} == {new_kid}

    # Only the newest key left: every row still decrypts, and the destination works.
    result = connection_test(with_keys(new), "early")
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"ok": true' in result.stdout
    # Without the newest key nothing decrypts, and the error names the missing key.
    result = connection_test(with_keys(old), "late")
    assert result.returncode != 0
    assert new_kid in result.stderr
    assert creds.secret_access_key not in result.stdout + result.stderr
    # Keys from the environment: no key file is written to the data directory.
    assert not (s3dest_env.data_dir / "secret.key").exists()
