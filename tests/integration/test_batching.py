"""Batching (SPEC §9) end to end, as a user sees it: messages over HTTP into `s3dest serve`,
JSON Lines objects in a real S3 server (Ceph RGW), read back with boto3; delivery records
from the API. Every test here runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import csv
import gzip
import io
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import zstandard
from sqlalchemy import create_engine, func, select
from tests.support.builders import create_destination, data_of, message, send_in_batches
from tests.support.fault_proxy import FaultProxy
from tests.support.polling import wait_queue_empty, wait_until
from tests.support.rgw_server import RgwServer
from tests.support.s3dest_server import S3destEnv, S3destProcess, serve, worker

from s3dest.settings import Settings
from s3dest.store.tables import attempts, messages


def _objects(rgw: RgwServer, bucket: str) -> dict[str, dict[str, Any]]:
    """key → {"body": decompressed bytes, "head": head_object} of every object."""
    s3 = rgw.client()
    out: dict[str, dict[str, Any]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            got = s3.get_object(Bucket=bucket, Key=item["Key"])
            raw = got["Body"].read()
            encoding = got.get("ContentEncoding")
            body = (
                gzip.decompress(raw)
                if encoding == "gzip"
                else zstandard.ZstdDecompressor().decompress(raw)
                if encoding == "zstd"
                else raw
            )
            out[item["Key"]] = {"body": body, "raw": raw, "head": got}
    return out


def _record_ids(sent: list[dict[str, Any]]) -> dict[str, int]:
    """A line's record id (message(n)'s `n`) from its body."""
    return {str(m["result"][0]["fields"]["id"]): i for i, m in enumerate(sent)}


def _line_id(line: bytes) -> str:
    return str(orjson.loads(line)["data"]["result"][0]["fields"]["id"])


@pytest.mark.timeout(900)  # the machine is shared: generous, never a timing assertion
def test_ten_thousand_messages_in_batches_of_500_make_20_objects(
    s3dest_server: S3destProcess,
    project: tuple[str, str],
    rgw_server: RgwServer,
) -> None:
    """The issue's acceptance: 10,000 messages with maxMessages 500 give 20 objects whose
    lines are exactly the messages' bodies, gzip-decodable, with the batch's metadata and
    Content-Encoding; each message's delivery record names its object and line."""
    project_id, api_key = project
    bucket = rgw_server.create_bucket()
    sent = [message(i, pad=50) for i in range(10_000)]
    with s3dest_server.client(api_key) as client:
        created = create_destination(
            client,  # type: ignore[arg-type]
            rgw_server,  # type: ignore[arg-type]
            bucket,
            batch={"maxMessages": 500, "maxSeconds": 3600, "compression": "gzip"},
        )
        assert created["batch"]["maxMessages"] == 500
        ids = send_in_batches(client, sent, size=1000)
    wait_queue_empty(s3dest_server, api_key, timeout=600)

    objects = _objects(rgw_server, bucket)
    assert len(objects) == 20, sorted(objects)
    expected = {
        _line_id(orjson.dumps({"data": data_of(m, project_id=project_id)})): m for m in sent
    }
    seen: Counter[str] = Counter()
    line_of: dict[str, tuple[str, int]] = {}
    for key, obj in objects.items():
        assert key.endswith(".jsonl.gz"), key
        head = obj["head"]
        assert head["ContentEncoding"] == "gzip"
        assert head["ContentType"] == "application/x-ndjson"
        lines = obj["body"].split(b"\n")
        assert lines[-1] == b"" and len(lines) == 501  # newline-terminated, 500 lines
        for n, line in enumerate(lines[:-1]):
            record_id = _line_id(line)
            seen[record_id] += 1
            line_of[record_id] = (key, n)
            # Exactly the message's body, as a message of its own would be written.
            assert orjson.loads(line) == {
                "data": data_of(expected[record_id], project_id=project_id)
            }
        meta = head["Metadata"]
        assert meta["batch-count"] == "500"
        assert meta["batch-first-event-time"] <= meta["batch-last-event-time"]
        assert meta["event-id"] in key  # the default template: rendered for the first
    assert set(seen) == set(expected) and set(seen.values()) == {1}

    # Each delivery record names its batch object and its line in it.
    by_id = dict(zip(ids, sent, strict=True))
    with s3dest_server.client(api_key) as client:
        records: dict[str, dict[str, Any]] = {}
        cursor = None
        while True:
            page = client.deliveries_page(limit=1000, cursor=cursor)
            records.update((r["eventId"], r) for r in page["deliveries"])
            cursor = page.get("nextCursor")
            if not cursor:
                break
    assert len(records) == 10_000
    for event_id, record in records.items():
        record_id = str(by_id[event_id]["result"][0]["fields"]["id"])
        key, line = line_of[record_id]
        assert record["state"] == "delivered"
        assert record["key"] == key
        assert record["batch"]["line"] == line


@pytest.mark.timeout(900)
def test_zstd_and_uncompressed_batches_and_a_partial_batch_by_age(
    s3dest_server: S3destProcess,
    project: tuple[str, str],
    rgw_server: RgwServer,
) -> None:
    """zstd-compressed and plain objects decode to the same lines; a batch that never fills
    is written once its oldest message has waited maxSeconds."""
    _, api_key = project
    for compression, suffix in (("zstd", ".jsonl.zst"), ("none", ".jsonl")):
        bucket = rgw_server.create_bucket()
        with s3dest_server.client(api_key) as client:
            create_destination(
                client,  # type: ignore[arg-type]
                rgw_server,  # type: ignore[arg-type]
                bucket,
                name=f"d-{compression}",
                batch={"maxMessages": 100, "maxSeconds": 1, "compression": compression},
            )
            sent = [message(i, destination=f"d-{compression}", pad=10) for i in range(130)]
            send_in_batches(client, sent, size=130)
        wait_queue_empty(s3dest_server, api_key, timeout=120)
        objects = _objects(rgw_server, bucket)
        sizes = sorted(obj["body"].count(b"\n") for obj in objects.values())
        assert sizes == [30, 100]  # one full, one sealed by age
        assert all(key.endswith(suffix) for key in objects)
        encodings = {obj["head"].get("ContentEncoding") for obj in objects.values()}
        assert encodings == ({"zstd"} if compression == "zstd" else {None})
        lines = [line for obj in objects.values() for line in obj["body"].splitlines()]
        assert sorted(_line_id(line) for line in lines) == sorted(str(i) for i in range(130))
    # The export names each message's batch: in CSV, its first event id and line.
    response = httpx.get(
        f"{s3dest_server.url}/v1/deliveries/export",
        params={"format": "csv", "destination": "d-none"},
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 130
    assert sorted(int(r["batchLine"]) for r in rows) == sorted([*range(100), *range(30)])
    assert len({r["batchId"] for r in rows}) == 2
    assert all(r["key"].endswith(".jsonl") for r in rows)


@pytest.mark.timeout(900)
def test_kill_9_during_batch_delivery_loses_nothing_and_repeats_only_whole_batches(
    s3dest_env: S3destEnv,
    project: tuple[str, str],
    rgw_server: RgwServer,
    tmp_path: Path,
) -> None:
    """kill -9 while batch PUTs are in flight (held 1.5 s by a proxy in front of RGW, some
    acknowledged by RGW but cut off before s3dest saw the answer), then restart: every
    message is in exactly one object, and every write of a key (the bucket keeps every
    version) carried the same bytes, so a repeat is always a whole batch at the same key."""
    _, api_key = project
    bucket = rgw_server.create_bucket()
    rgw_server.client().put_bucket_versioning(
        Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
    )
    proxy = FaultProxy(rgw_server.endpoint, put_delay_seconds=1.5, seed=11).start()
    # Two PUTs reach RGW and are stored, then their answer is reset: s3dest writes them again.
    proxy.fail_next("reset", method="PUT", stage="after", count=2)
    # The killed server's leases (its batches in flight) expire in 5 s, not 30.
    s3dest_env.extra["S3DEST_LEASE_SECONDS"] = "5"
    server = serve(s3dest_env, tmp_path)
    try:
        sent = [message(i, pad=20) for i in range(3000)]
        with server.client(api_key) as client:
            create_destination(
                client,  # type: ignore[arg-type]
                rgw_server,  # type: ignore[arg-type]
                bucket,
                endpoint=proxy.url,
                batch={"maxMessages": 500, "maxSeconds": 3600},
            )
            send_in_batches(client, sent, size=500)
        wait_until(lambda: proxy.in_flight_now() > 0, 60, "a batch PUT in flight")
        server.kill()  # kill -9, with PUTs in flight
        server = serve(s3dest_env, tmp_path)
        wait_queue_empty(server, api_key, timeout=300)
    finally:
        server.kill()
        proxy.stop()

    s3 = rgw_server.client()
    versions: dict[str, list[str]] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for v in page.get("Versions", []):
            versions.setdefault(v["Key"], []).append(v["ETag"])
    assert len(versions) == 6, sorted(versions)
    # Keys were written more than once (the resets, and the PUTs the kill cut off) ...
    assert sum(len(etags) for etags in versions.values()) > 6, versions
    assert proxy.stats().duplicate_puts >= 2
    # ... and every write of a key wrote the same bytes: one ETag per key.
    assert all(len(set(etags)) == 1 for etags in versions.values()), versions
    objects = _objects(rgw_server, bucket)
    ids = Counter(_line_id(line) for obj in objects.values() for line in obj["body"].splitlines())
    assert set(ids) == {str(i) for i in range(3000)} and set(ids.values()) == {1}


@pytest.mark.timeout(900)
def test_three_postgresql_workers_seal_and_write_each_batch_once(
    tmp_path: Path, pg_database_url: str, rgw_server: RgwServer
) -> None:
    """One API process and three `s3dest worker` processes on one PostgreSQL database, all
    sealing and delivering the same destination's 6,000 messages at once: 12 batches of
    500, each sealed once (one leader each, lines 0..499) and written once, and no message
    in two batches."""
    env = S3destEnv(
        data_dir=tmp_path / "data", database_url=pg_database_url, extra={"S3DEST_SECRET_KEY": ""}
    )
    _, api_key = env.create_project("multi")
    bucket = rgw_server.create_bucket()
    processes = [serve(env, tmp_path, "--no-workers")]
    try:
        api = processes[0]
        with api.client(api_key) as client:
            create_destination(
                client,  # type: ignore[arg-type]
                rgw_server,  # type: ignore[arg-type]
                bucket,
                batch={"maxMessages": 500, "maxSeconds": 3600},
            )
        processes += [worker(env, tmp_path, f"worker-{i}") for i in range(3)]
        with api.client(api_key) as client:
            send_in_batches(client, [message(i, pad=20) for i in range(6000)], size=250)
        wait_queue_empty(api, api_key, timeout=300)
    finally:
        for process in processes:
            process.kill()
    engine = create_engine(Settings(database_url=pg_database_url).sqlalchemy_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(messages.c.batch_leader, messages.c.batch_line, messages.c.state)
            ).all()
            puts = conn.execute(
                select(attempts.c.event_id, func.count()).group_by(attempts.c.event_id)
            ).all()
    finally:
        engine.dispose()
    lines: dict[str, list[int]] = {}
    for leader, line, state in rows:
        assert state == "delivered"
        lines.setdefault(leader, []).append(line)
    assert len(lines) == 12
    assert all(sorted(v) == list(range(500)) for v in lines.values())
    # One PUT attempt per batch, by its leader; none for the other lines.
    assert sorted(event_id for event_id, _ in puts) == sorted(lines)
    assert {n for _, n in puts} == {1}
    objects = _objects(rgw_server, bucket)
    assert len(objects) == 12
    ids = Counter(_line_id(line) for obj in objects.values() for line in obj["body"].splitlines())
    assert set(ids) == {str(i) for i in range(6000)} and set(ids.values()) == {1}
