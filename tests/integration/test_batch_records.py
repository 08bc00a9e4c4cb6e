"""A batching destination's delivery records (SPEC §9) as a user reads them — the REST API,
the CLI and the dashboard of a real `s3dest serve`, moto S3 — on SQLite and PostgreSQL:
the states batching and batched are listed, filtered and shown; each record names its batch
and line; a member re-delivered is written alone.

The API is served first without workers, so the messages stay where the test puts them:
it seals their batch with the queue's own `seal_due`, as a worker's poll does; then a server
with workers delivers it.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from tests.support.builders import create_destination, message
from tests.support.dashboard import sign_in
from tests.support.moto_server import S3Server
from tests.support.polling import wait_for_state
from tests.support.s3dest_server import S3destEnv, serve

from s3dest.runtime import open_engine
from s3dest.store import queue


def test_batch_states_and_records_through_the_api_cli_and_dashboard(
    s3dest_env: S3destEnv,
    project: tuple[str, str],
    s3_server: S3Server,
    bucket: str,
    tmp_path: Path,
) -> None:
    project_id, key = project
    server = serve(s3dest_env, tmp_path, "--no-workers")
    engine = open_engine(s3dest_env.settings())
    api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60)
    try:
        # Batches of three, never sealed by age here.
        create_destination(api, s3_server, bucket, batch={"maxMessages": 3, "maxSeconds": 3600})
        sent = api.post("/v1/messages", json={"messages": [message(n) for n in range(4)]})
        assert sent.status_code == 202, sent.text
        ids = sorted(a["eventId"] for a in sent.json()["accepted"])  # acceptance order
        leader, member, last = ids[0], ids[2], ids[3]

        # -- waiting for the batch to fill: a state of its own, filtered and shown ----------
        waiting = api.get(f"/v1/messages/{leader}")
        assert waiting.status_code == 200, waiting.text
        assert waiting.json()["state"] == "batching" and waiting.json()["batch"] is None
        found = api.get("/v1/deliveries", params={"state": "batching"})
        assert found.status_code == 200, found.text
        assert sorted(r["eventId"] for r in found.json()["deliveries"]) == ids

        # -- sealed: the first message leads, the others are batched with their line ------
        assert queue.seal_due(engine) == 1
        batched = api.get("/v1/deliveries", params={"state": "batched"}).json()["deliveries"]
        assert {r["eventId"]: r["batch"] for r in batched} == {
            ids[1]: {"id": leader, "line": 1},
            member: {"id": leader, "line": 2},
        }
        assert api.get(f"/v1/messages/{leader}").json()["batch"] == {"id": leader, "line": 0}
        assert api.get(f"/v1/messages/{last}").json()["state"] == "batching"  # the fourth

        # The CLI (local mode) takes the new states and prints the batch.
        listed = s3dest_env.cli(
            "deliveries", "list", "--state", "batched", "--json", "--project", project_id
        )
        assert {r["eventId"] for r in json.loads(listed.stdout)["deliveries"]} == {ids[1], member}
        shown = s3dest_env.cli("deliveries", "show", member, "--project", project_id)
        assert json.loads(shown.stdout)["batch"] == {"id": leader, "line": 2}

        # The dashboard: the states' columns and badges, and the message's batch.
        page = sign_in(server.url, key)
        overview = page.get("/deliveries").text
        assert '<th scope="col" class="num">batching</th>' in overview
        assert '<th scope="col" class="num">batched</th>' in overview
        assert '<span class="state state-batched">batched</span>' in overview
        one = page.get(f"/messages/{member}").text
        assert "line 2 <span" in one and "a batch whose object is not written yet" in one
        assert f'href="/messages/{leader}" id="message-batch-leader"' in one
        assert page.get("/deliveries", params={"state": "batched"}).status_code == 200
        page.close()
    finally:
        api.close()
        server.kill()

    # -- delivered by a server with workers: every member has the batch object's key ------
    server = serve(s3dest_env, tmp_path)
    api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60)
    try:
        record = wait_for_state(api, member, "delivered")
        object_key = record["key"]
        assert object_key.endswith(".jsonl.gz") and leader in object_key
        assert record["batch"] == {"id": leader, "line": 2}
        page = sign_in(server.url, key)
        one = page.get(f"/messages/{member}").text
        page.close()
        assert f'of object <code class="key">{object_key}</code>' in one

        # -- re-delivered, the member is written alone, under a key of its own ------------
        again = api.post(f"/v1/messages/{member}/redeliver")
        assert again.status_code == 200, again.text
        assert again.json()["state"] == "queued" and again.json()["batch"] is None
        alone = wait_for_state(api, member, "delivered")
        assert alone["batch"] is None and alone["key"] != object_key
        assert member in alone["key"] and not alone["key"].endswith(".jsonl.gz")
        # The others still name the object that holds them.
        assert api.get(f"/v1/messages/{ids[1]}").json()["key"] == object_key
    finally:
        api.close()
        server.kill()
        engine.dispose()
