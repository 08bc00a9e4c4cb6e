"""API keys (issue 13 item 6): list, create, revoke through REST and the CLI; the last key
of a project cannot be revoked; a revoked key is refused by every process within a second.

Every test runs against a real `s3dest serve`, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import httpx

from tests.support.s3dest_server import S3destEnv, S3destProcess, serve


def api(server: S3destProcess, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def test_keys_are_listed_created_and_revoked_never_shown_again(
    s3dest_server: S3destProcess, s3dest_env: S3destEnv
) -> None:
    _, first = s3dest_env.create_project("alpha")
    _, other = s3dest_env.create_project("bravo")
    with api(s3dest_server, first) as client:
        listed = client.get("/v1/api-keys")
        assert listed.status_code == 200, listed.text
        keys = listed.json()["keys"]
        assert len(keys) == 1
        assert set(keys[0]) == {"id", "name", "prefix", "createdAt", "lastUsedAt"}
        assert first.startswith(keys[0]["prefix"]) and len(keys[0]["prefix"]) < 12
        # The listing was an authenticated request: lastUsedAt is set (to within a minute).
        assert keys[0]["lastUsedAt"] is not None
        assert time.time() - 120 < keys[0]["lastUsedAt"] <= time.time() + 1
        first_id = keys[0]["id"]

        # The last key cannot be revoked: 409 that says what to do.
        refused = client.delete(f"/v1/api-keys/{first_id}")
        assert refused.status_code == 409, refused.text
        assert "last API key" in refused.json()["error"]["message"]
        assert "Create another key first" in refused.json()["error"]["message"]

        # A name is required, and named as the field to fix.
        bad = client.post("/v1/api-keys", json={"name": "  "})
        assert bad.status_code == 422 and "name" in bad.json()["error"]["fields"], bad.text

        created = client.post("/v1/api-keys", json={"name": "ci"})
        assert created.status_code == 201, created.text
        body = created.json()
        assert set(body) == {"id", "name", "key"} and body["name"] == "ci"
        second = body["key"]
        assert second.startswith("s3d_") and second != first

        text = client.get("/v1/api-keys").text
        # The list never carries a key or its hash.
        for secret in (first, second):
            assert secret not in text
            assert hashlib.sha256(secret.encode()).hexdigest() not in text
        names = {k["name"]: k for k in client.get("/v1/api-keys").json()["keys"]}
        assert set(names) == {"default", "ci"}
        assert names["ci"]["lastUsedAt"] is None  # not used yet

    with api(s3dest_server, second) as client:
        assert client.get("/v1/destinations").status_code == 200
        # Another project's key id is not found from here, and cannot be revoked.
        with api(s3dest_server, other) as bravo:
            bravo_id = bravo.get("/v1/api-keys").json()["keys"][0]["id"]
        assert client.delete(f"/v1/api-keys/{bravo_id}").status_code == 404
        # The second key revokes the first.
        assert client.delete(f"/v1/api-keys/{first_id}").status_code == 204
        assert client.delete(f"/v1/api-keys/{first_id}").status_code == 404
        assert [k["name"] for k in client.get("/v1/api-keys").json()["keys"]] == ["ci"]
    with api(s3dest_server, first) as client:
        # The revoker's process refuses the revoked key at once (its cache is < 1 s).
        time.sleep(0.6)
        assert client.get("/v1/destinations").status_code == 401
    with api(s3dest_server, other) as bravo:
        assert bravo.get("/v1/destinations").status_code == 200  # other projects unaffected


def test_cli_lists_adds_and_revokes_keys(s3dest_env: S3destEnv) -> None:
    _, first = s3dest_env.create_project("alpha")
    added = s3dest_env.cli("projects", "keys", "add", "--name", "deploy").stdout.strip()
    assert added.startswith("s3d_")
    alias = s3dest_env.cli("projects", "add-key").stdout.strip()  # the old spelling works
    assert alias.startswith("s3d_") and alias != added
    listing = s3dest_env.cli("projects", "keys", "list").stdout
    assert "deploy" in listing and added[:8] in listing
    assert first not in listing and added not in listing
    s3dest_env.cli("projects", "keys", "revoke", "deploy")
    s3dest_env.cli("projects", "keys", "revoke", alias[:8])
    left = s3dest_env.cli("projects", "keys", "list").stdout
    assert "deploy" not in left and len(left.strip().splitlines()) == 2  # header, one key
    last = s3dest_env.cli("projects", "keys", "revoke", "default", check=False)
    assert last.returncode == 1 and "last API key" in last.stderr, last.stderr


def test_revocation_holds_in_every_process_within_a_second(
    s3dest_env: S3destEnv, tmp_path: Path
) -> None:
    """Two `s3dest serve` processes share one database (PostgreSQL, or one SQLite file).
    A key revoked through one must be refused by the other within a second (SPEC §5). The
    bound asserted is 2 s, a margin for two busy shared cores; the measured time is printed
    (run with -s) and is typically well under a second."""
    _, keeper = s3dest_env.create_project("alpha")
    one = serve(s3dest_env, tmp_path)
    two = serve(s3dest_env, tmp_path)
    try:
        with api(one, keeper) as client:
            created = client.post("/v1/api-keys", json={"name": "doomed"})
            assert created.status_code == 201, created.text
            doomed_id, doomed = created.json()["id"], created.json()["key"]
        with api(two, doomed) as victim:
            # Warm the second process's cache with the key it will have to forget.
            for _ in range(5):
                assert victim.get("/v1/destinations").status_code == 200
            with api(one, keeper) as client:
                assert client.delete(f"/v1/api-keys/{doomed_id}").status_code == 204
            revoked_at = time.monotonic()
            status = 200
            while time.monotonic() - revoked_at < 5:
                status = victim.get("/v1/destinations").status_code
                if status != 200:
                    break
                time.sleep(0.02)
            elapsed = time.monotonic() - revoked_at
        print(f"\nrevocation seen by the other process after {elapsed * 1000:.0f} ms")
        assert status == 401, status
        assert elapsed <= 2.0, f"the other process accepted the revoked key for {elapsed:.2f} s"
    finally:
        one.kill()
        two.kill()
