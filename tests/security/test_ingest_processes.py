"""Large ingest requests are checked and stored in worker processes (issue 13, SPEC §7
"Fair share": blocking work never runs where other tenants' requests are served). On the
server's own threads one tenant's 8 MiB batches held the GIL and another tenant's GET
took p99 0.7-2.8 s (bench/tenancy.py). What these tests pin: a request handled by a
worker means the same as before (202 once stored, 422 naming the fields, nothing of a
refused batch stored), and the workers never outlive their server, even a killed one."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson
import pytest

from tests.support.builders import example_destination_fields, message
from tests.support.load import process_tree
from tests.support.s3dest_server import S3destEnv, S3destProcess, serve

JSON = {"Content-Type": "application/json"}
# Small enough to be quick, above S3DEST_INGEST_PROCESS_BYTES as set here.
_PROCESS_BYTES = 8 * 1024


def _descendants(pid: int) -> set[int]:
    return process_tree(pid) - {pid}


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _serve(env: S3destEnv, tmp_path: Path) -> tuple[S3destProcess, httpx.Client]:
    env.extra["S3DEST_INGEST_PROCESS_BYTES"] = str(_PROCESS_BYTES)
    _, api_key = env.create_project("a")
    server = serve(env, tmp_path)
    client = httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {api_key}"}, timeout=120
    )
    created = client.post(
        "/v1/destinations", json=example_destination_fields("held", enabled=False)
    )
    assert created.status_code == 201, created.text
    return server, client


def test_a_large_batch_is_stored_by_a_worker_process_with_the_same_answers(
    s3dest_env: S3destEnv, tmp_path: Path
) -> None:
    """A batch above the process threshold is handled by a worker process (one appears
    under the server) and answered as on the server's threads: a bad message is a 422
    naming its field and stores nothing; a good batch is a 202 whose every event is
    stored; a spooled body (above S3DEST_INLINE_BODY_BYTES) goes the same way. And the
    workers do not outlive a killed server."""
    s3dest_env.extra["S3DEST_INLINE_BODY_BYTES"] = str(64 * 1024)
    server, client = _serve(s3dest_env, tmp_path)
    assert server.proc is not None
    try:
        assert not _descendants(server.proc.pid)  # small requests stay in the server
        good = [message(i, "held") for i in range(40)]
        bad = [*good[:7], {**message(7, "held"), "provider": 7}, *good[8:]]
        for body in (bad, bad * 10):  # inline, then spooled
            raw = orjson.dumps({"messages": body})
            assert len(raw) >= _PROCESS_BYTES
            refused = client.post("/v1/messages", content=raw, headers=JSON)
            assert refused.status_code == 422, refused.text[:300]
            assert "messages[7].provider" in refused.json()["error"]["fields"], refused.text
        assert _descendants(server.proc.pid), "no worker process handled the batch"
        deliveries = client.get("/v1/deliveries", params={"limit": 1000}).json()
        assert deliveries["deliveries"] == []  # nothing of a refused batch was stored
        for body in (good, good * 10):
            raw = orjson.dumps({"messages": body})
            accepted = client.post("/v1/messages", content=raw, headers=JSON)
            assert accepted.status_code == 202, accepted.text[:300]
            events = accepted.json()["accepted"]
            assert len(events) == len(body)
            for item in (events[0], events[-1]):
                record = client.get(f"/v1/messages/{item['eventId']}")
                assert record.status_code == 200 and record.json()["state"] == "held"
        deliveries = client.get("/v1/deliveries", params={"limit": 1000}).json()
        assert len(deliveries["deliveries"]) == 40 + 400
        # With an Idempotency-Key the worker saves the answer with the messages: an answer
        # above the 64 KiB the worker writes in pieces, replayed byte for byte.
        raw = orjson.dumps({"messages": good * 20})
        keyed = {**JSON, "Idempotency-Key": "file-1"}
        first = client.post("/v1/messages", content=raw, headers=keyed)
        assert first.status_code == 202, first.text[:300]
        assert len(first.content) > 64 * 1024 and len(first.json()["accepted"]) == 800
        again = client.post("/v1/messages", content=raw, headers=keyed)
        assert again.headers.get("Idempotent-Replayed") == "true", again.text[:300]
        assert again.content == first.content
        workers = _descendants(server.proc.pid)
    finally:
        client.close()
        server.kill()
    # kill -9 of the server: its worker processes (and their forkserver) are gone within
    # 10 s (generous; they read end-of-file at once). Without the lifeline they stayed.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.1)
    assert not [pid for pid in workers if _alive(pid)], "worker processes outlived the server"


# Where a body is checked does not depend on the database.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_flood_of_bodies_just_under_the_threshold_does_not_stay_on_the_servers_threads(
    s3dest_env: S3destEnv, tmp_path: Path
) -> None:
    """Issue 13: bodies just under S3DEST_INGEST_PROCESS_BYTES were all checked on the
    server's own threads, so a tenant could hold its GIL from several threads at once by
    posting many of them in parallel. One small body per project is checked on a thread at
    a time; the others go to the worker processes. Before: 16 parallel bodies of 7.5 KiB
    (threshold 8 KiB) started no worker process."""
    server, client = _serve(s3dest_env, tmp_path)
    assert server.proc is not None
    try:
        raw = orjson.dumps({"messages": [message(i, "held") for i in range(12)]})
        raw = raw[:-2] + b" " * (_PROCESS_BYTES - 512 - len(raw)) + raw[-2:]
        assert _PROCESS_BYTES - 1024 < len(raw) < _PROCESS_BYTES
        assert client.post("/v1/messages", content=raw, headers=JSON).status_code == 202
        assert not _descendants(server.proc.pid)  # one at a time stays in the server

        def post(_: int) -> int:
            return client.post("/v1/messages", content=raw, headers=JSON).status_code

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(post, range(32)))
        assert answers == [202] * 32
        assert _descendants(server.proc.pid), "every body of the flood stayed on the threads"
        listed = client.get("/v1/deliveries", params={"limit": 1000}).json()["deliveries"]
        assert len(listed) == 33 * 12
    finally:
        client.close()
        server.kill()
