"""Delivery end to end, as a user sees it: HTTP in, objects in the (moto) bucket, delivery
records and metrics out. Every test here runs on SQLite and on PostgreSQL.

The helpers at the top are shared by the other delivery test modules (crash, multi-node,
failures, large messages).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import orjson
import pytest
from tests.support.moto_server import S3Server
from tests.support.s3dest_server import S3destProcess

from s3dest.client import Client

# -- shared helpers ----------------------------------------------------------------------------


def create_destination(
    client: Client, s3: S3Server, bucket: str, name: str = "d", **overrides: Any
) -> dict[str, Any]:
    """A destination on the moto bucket with a PutObject-only IAM user."""
    creds = s3.putonly_user(bucket)
    fields: dict[str, Any] = {
        "name": name,
        "bucket": bucket,
        "region": s3.region,
        "accessKeyId": creds.access_key_id,
        "secretAccessKey": creds.secret_access_key,
        "endpointUrl": s3.endpoint,
        **overrides,
    }
    return client.create_destination(**fields)


def message(n: int = 0, destination: str = "d", **overrides: Any) -> dict[str, Any]:
    return {
        "destination": destination,
        "action": "read",
        "provider": "salesforce",
        "installationId": "inst-1",
        "groupRef": f"group-{n % 7}",
        "objectName": "account",
        "result": [{"fields": {"id": str(n), "name": f"Account {n}", "pad": "x" * 200}}],
        **overrides,
    }


def wait_until(
    predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2
) -> Any:
    """Poll `predicate` until it returns something truthy; generous deadlines, no timing
    assertions (the machine is shared)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def metrics_text(server: S3destProcess, api_key: str) -> str:
    response = httpx.get(
        f"{server.url}/metrics", headers={"Authorization": f"Bearer {api_key}"}, timeout=30
    )
    response.raise_for_status()
    return response.text


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = ",".join(sorted((m.group(2) or "{}")[1:-1].split(","))) if m.group(2) else ""
        if got == want:
            return float(m.group(3))
    return 0.0


def queue_depth(server: S3destProcess, api_key: str) -> float:
    return metric(metrics_text(server, api_key), "s3dest_queue_depth")


def wait_queue_empty(server: S3destProcess, api_key: str, timeout: float) -> None:
    """Until nothing is queued, in flight, retrying or held (all processes, via the database)."""
    wait_until(lambda: queue_depth(server, api_key) == 0, timeout, "an empty queue", 0.5)


def bucket_keys(s3: S3Server, bucket: str) -> set[str]:
    keys: set[str] = set()
    paginator = s3.client().get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket):
        keys.update(obj["Key"] for obj in page.get("Contents", []))
    return keys


def send_in_batches(
    client: Client, messages: Iterable[dict[str, Any]], size: int = 100
) -> list[str]:
    ids: list[str] = []
    batch: list[dict[str, Any]] = []
    for m in messages:
        batch.append(m)
        if len(batch) == size:
            ids += [a["eventId"] for a in client.send_batch(batch)]
            batch = []
    if batch:
        ids += [a["eventId"] for a in client.send_batch(batch)]
    return ids


def records(
    server: S3destProcess, api_key: str, event_ids: Iterable[str], *, connections: int = 4
) -> list[dict[str, Any]]:
    """GET /v1/messages/{id} for each (in order), over a few keep-alive connections."""
    ids = list(event_ids)

    def fetch(part: list[str]) -> list[dict[str, Any]]:
        with server.client(api_key) as client:
            return [client.message(event_id) for event_id in part]

    parts = [ids[i::connections] for i in range(connections)]
    with ThreadPoolExecutor(connections) as pool:
        fetched = list(pool.map(fetch, parts))
    out: list[dict[str, Any]] = [{}] * len(ids)
    for i, part in enumerate(fetched):
        out[i::connections] = part
    return out


def assert_all_delivered(
    server: S3destProcess, api_key: str, s3: S3Server, bucket: str, event_ids: list[str]
) -> list[dict[str, Any]]:
    """Every message says delivered with a key that is in the bucket, and the bucket holds
    exactly those keys."""
    got = records(server, api_key, event_ids)
    not_delivered = [
        (r["eventId"], r["state"], r["lastError"]) for r in got if r["state"] != "delivered"
    ]
    assert not not_delivered, not_delivered[:10]
    keys = [r["key"] for r in got]
    assert all(event_id in key for event_id, key in zip(event_ids, keys, strict=True))
    assert len(set(keys)) == len(event_ids)
    assert set(keys) == bucket_keys(s3, bucket)
    assert all(r["bucket"] == bucket and r["etag"] and r["attempts"] >= 1 for r in got)
    return got


# -- the tests ---------------------------------------------------------------------------------


@pytest.mark.timeout(1200)  # the machine is shared: generous, never a timing assertion
def test_thousands_of_messages_over_http_reach_the_bucket(
    s3dest_server: S3destProcess,
    project: tuple[str, str],
    s3_server: S3Server,
    bucket: str,
    database_url: str | None,
) -> None:
    _, api_key = project
    # The 10,000 on the embedded default; PostgreSQL's queue runs the same path with
    # 2,000 here (moto absorbs ~130 PUTs/s, so each 10,000 costs the suite ~3 minutes) and is
    # driven harder by the multi-node, crash and fault tests and by bench/pipeline.py.
    n = 2_000 if database_url else 10_000
    started = time.monotonic()
    with s3dest_server.client(api_key) as client:
        create_destination(client, s3_server, bucket)
        ids = send_in_batches(client, (message(i) for i in range(n)), size=100)
    sent = time.monotonic() - started
    assert len(set(ids)) == n
    wait_queue_empty(s3dest_server, api_key, timeout=600)
    delivered = time.monotonic() - started
    got = assert_all_delivered(s3dest_server, api_key, s3_server, bucket, ids)
    print(
        f"\n{n} messages on {'PostgreSQL' if database_url else 'SQLite'}: sent in {sent:.1f}s, "
        f"all delivered after {delivered:.1f}s; {sum(r['attempts'] for r in got)} attempts"
    )


def test_batch_is_all_or_nothing(
    s3dest_server: S3destProcess, project: tuple[str, str], s3_server: S3Server, bucket: str
) -> None:
    _, api_key = project
    headers = {"Authorization": f"Bearer {api_key}"}
    with s3dest_server.client(api_key) as client:
        create_destination(client, s3_server, bucket)
    bad = message(1)
    del bad["installationId"]
    bad["objectName"] = ""
    response = httpx.post(
        f"{s3dest_server.url}/v1/messages",
        json={"messages": [message(0), bad, message(2)]},
        headers=headers,
        timeout=30,
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert set(error["fields"]) == {"messages[1].installationId", "messages[1].objectName"}
    assert error["message"]
    with s3dest_server.client(api_key) as client:
        assert client.deliveries() == []  # none of the three was accepted
        ok = client.send_batch([message(0), message(1), message(2)])
    assert len(ok) == 3


def test_delivery_record_and_listing(
    s3dest_server: S3destProcess, project: tuple[str, str], s3_server: S3Server, bucket: str
) -> None:
    _, api_key = project
    with s3dest_server.client(api_key) as client:
        dest = create_destination(client, s3_server, bucket)
        accepted = client.send(message(5))
        event_id = accepted["eventId"]
        assert accepted["destinationId"] == dest["id"]
        record = wait_until(
            lambda: (r := client.message(event_id))["state"] == "delivered" and r, 60, "delivery"
        )
        assert record["eventId"] == event_id and record["destinationId"] == dest["id"]
        assert record["bucket"] == bucket and event_id in record["key"]
        assert record["etag"] and record["attempts"] == 1 and record["lastError"] is None
        assert record["acceptedAt"] <= record["deliveredAt"]
        assert record["eventTime"].endswith("Z") and record["size"] > 0
        (attempt,) = record["history"]
        assert attempt["outcome"] == "delivered"
        assert attempt["startedAt"] <= attempt["finishedAt"]
        head = s3_server.client().head_object(Bucket=bucket, Key=record["key"])
        assert head["ETag"] == record["etag"]
        assert head["Metadata"]["event-id"] == event_id
        listed = client.deliveries(destination="d", state="delivered")
        assert [r["eventId"] for r in listed] == [event_id]
        assert client.deliveries(state="parked") == []
        with pytest.raises(Exception, match="no message"):
            client.message("0190f000-0000-7000-8000-000000000000")


def test_metrics(
    s3dest_server: S3destProcess, project: tuple[str, str], s3_server: S3Server, bucket: str
) -> None:
    _, api_key = project
    assert httpx.get(f"{s3dest_server.url}/metrics", timeout=30).status_code == 401
    with s3dest_server.client(api_key) as client:
        good = create_destination(client, s3_server, bucket, name="good")
        broken = create_destination(
            client,
            s3_server,
            bucket,
            name="broken",
            keyTemplate="join('/', [data.groupRef, metadata.\"event-id\"])",
        )
        ids = send_in_batches(client, (message(i, destination="good") for i in range(30)))
        # Two parked: no groupRef for the template of "broken".
        parked = [
            client.send(message(i, destination="broken", groupRef=None))["eventId"]
            for i in range(2)
        ]
        wait_until(
            lambda: all(client.message(e)["state"] == "parked" for e in parked), 60, "parking"
        )
    wait_queue_empty(s3dest_server, api_key, timeout=120)
    text = metrics_text(s3dest_server, api_key)
    assert metric(text, "s3dest_messages_accepted_total", destination=good["id"]) == 30
    assert metric(text, "s3dest_messages_delivered_total", destination=good["id"]) == 30
    assert metric(text, "s3dest_messages_accepted_total", destination=broken["id"]) == 2
    assert metric(text, "s3dest_messages_parked_total", destination=broken["id"]) == 2
    assert metric(text, "s3dest_messages_retried_total", destination=good["id"]) == 0
    assert metric(text, "s3dest_messages_held_total", destination=good["id"]) == 0
    assert metric(text, "s3dest_messages", destination=broken["id"], state="parked") == 2
    assert metric(text, "s3dest_queue_depth") == 0
    assert metric(text, "s3dest_accept_to_delivered_seconds_count") == 30
    total = metric(text, "s3dest_accept_to_delivered_seconds_sum")
    assert 0 < total < 30 * 300  # plausible: positive, and each under five minutes
    assert metric(text, "s3dest_accept_to_delivered_seconds_bucket", le="+Inf") == 30
    assert len(ids) == 30

    # One structured log line per delivery outcome (written in batches by the worker).
    lines = [orjson.loads(line) for line in s3dest_server.log().splitlines() if line[:1] == "{"]
    outcomes = [entry for entry in lines if entry["logger"] == "s3dest.delivery"]
    delivered = {e["eventId"]: e for e in outcomes if e["msg"] == "delivered"}
    assert sorted(delivered) == sorted(ids)
    assert len([e for e in outcomes if e["msg"] == "delivered"]) == 30
    for event_id, entry in delivered.items():
        assert entry["level"] == "info" and entry["destinationId"] == good["id"]
        assert entry["bucket"] == bucket and event_id in entry["key"]
        assert entry["etag"] and entry["attempt"] == 1 and entry["latencyMs"] >= 0
        assert entry["ts"] > 1.7e9
    parked_lines = [e for e in outcomes if e["msg"] == "parked"]
    assert sorted(e["eventId"] for e in parked_lines) == sorted(parked)
    for entry in parked_lines:
        assert entry["level"] == "warning" and entry["errorKind"] == "message"
        assert "groupRef" in entry["error"] or "template" in entry["error"], entry["error"]
