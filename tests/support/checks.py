"""What the tests look at after the fact: metrics, the bucket, delivery records."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.support.moto_server import S3Server
from tests.support.s3dest_server import S3destProcess


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


def bucket_keys(s3: S3Server, bucket: str) -> set[str]:
    """Every key in the bucket (all pages)."""
    keys: set[str] = set()
    paginator = s3.client().get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket):
        keys.update(obj["Key"] for obj in page.get("Contents", []))
    return keys


def read_object(s3: S3Server, bucket: str, key: str) -> tuple[dict[str, Any], dict[str, str]]:
    """(the object's JSON body, its user metadata)."""
    got = s3.client().get_object(Bucket=bucket, Key=key)
    body: dict[str, Any] = json.loads(got["Body"].read())
    return body, got["Metadata"]


def records(
    server: S3destProcess, api_key: str, event_ids: Iterable[str], *, connections: int = 4
) -> list[dict[str, Any]]:
    """The delivery record of each (in order): GET /v1/messages/{id} for a few, and for
    thousands the pages of GET /v1/deliveries (the same record, 1,000 a request; 10,000
    single GETs cost a minute of the suite). Any the pages miss is fetched on its own."""
    ids = list(event_ids)
    found: dict[str, dict[str, Any]] = {}
    if len(ids) > PAGED_ABOVE:
        with server.client(api_key) as client:
            cursor: str | None = None
            while True:
                page = client.deliveries_page(limit=1000, cursor=cursor)
                found.update((r["eventId"], r) for r in page["deliveries"])
                cursor = page["nextCursor"]
                if not cursor:
                    break
    missing = [e for e in ids if e not in found]

    def fetch(part: list[str]) -> list[dict[str, Any]]:
        with server.client(api_key) as client:
            return [client.message(event_id) for event_id in part]

    parts = [missing[i::connections] for i in range(connections)]
    with ThreadPoolExecutor(connections) as pool:
        for part in pool.map(fetch, parts):
            found.update((r["eventId"], r) for r in part)
    return [found[e] for e in ids]


PAGED_ABOVE = 200


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
