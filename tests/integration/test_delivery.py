"""Delivery end to end, as a user sees it: HTTP in, objects in the (moto) bucket, delivery
records and metrics out. Every test here runs on SQLite and on PostgreSQL.

The helpers they use (builders, polling, checks) live in tests/support.
"""

from __future__ import annotations

import time

import httpx
import orjson
import pytest
from tests.support.builders import create_destination, message, send_in_batches
from tests.support.checks import assert_all_delivered, metric, metrics_text
from tests.support.moto_server import S3Server
from tests.support.polling import wait_for_state, wait_queue_empty, wait_until
from tests.support.rgw_server import RgwServer
from tests.support.s3dest_server import S3destProcess

# -- the tests ---------------------------------------------------------------------------------


@pytest.mark.timeout(1200)  # the machine is shared: generous, never a timing assertion
def test_thousands_of_messages_over_http_reach_the_bucket(
    s3dest_server: S3destProcess,
    project: tuple[str, str],
    rgw_server: RgwServer,
    database_url: str | None,
) -> None:
    """The issue's 10,000 messages over HTTP on the embedded default, every one in the bucket
    with its own key.

    Against Ceph RGW, which keeps connections alive as S3 does and takes ~10x the PUTs per
    second of moto (which closes every connection; 10,000 PUTs to it cost ~2 minutes of
    the suite). moto's IAM-enforcing runs of the same path are the other tests here."""
    _, api_key = project
    bucket = rgw_server.create_bucket()
    # PostgreSQL's queue runs the same path with 2,000 here, and is driven harder by the
    # multi-node, crash and fault tests and by bench/pipeline.py.
    n = 2_000 if database_url else 10_000
    started = time.monotonic()
    with s3dest_server.client(api_key) as client:
        create_destination(client, rgw_server, bucket)  # type: ignore[arg-type]
        ids = send_in_batches(client, (message(i) for i in range(n)), size=100)
    sent = time.monotonic() - started
    assert len(set(ids)) == n
    wait_queue_empty(s3dest_server, api_key, timeout=600)
    delivered = time.monotonic() - started
    got = assert_all_delivered(s3dest_server, api_key, rgw_server, bucket, ids)  # type: ignore[arg-type]
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
        record = wait_for_state(client, event_id, "delivered", 60)
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
    # A project's series carry the destination's name and project as well as its id.
    project_id = project[0]
    g = {"destination": good["id"], "destination_name": "good", "project": project_id}
    b = {"destination": broken["id"], "destination_name": "broken", "project": project_id}
    assert metric(text, "s3dest_messages_accepted_total", **g) == 30
    assert metric(text, "s3dest_messages_delivered_total", **g) == 30
    assert metric(text, "s3dest_messages_accepted_total", **b) == 2
    assert metric(text, "s3dest_messages_parked_total", **b) == 2
    assert metric(text, "s3dest_messages_retried_total", **g) == 0
    assert metric(text, "s3dest_messages_held_total", **g) == 0
    assert metric(text, "s3dest_messages", **b, state="parked") == 2
    assert metric(text, "s3dest_queue_depth") == 0
    assert metric(text, "s3dest_accept_to_delivered_seconds_count", **g) == 30
    total = metric(text, "s3dest_accept_to_delivered_seconds_sum", **g)
    assert 0 < total < 30 * 300  # plausible: positive, and each under five minutes
    assert metric(text, "s3dest_accept_to_delivered_seconds_bucket", **g, le="+Inf") == 30
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
