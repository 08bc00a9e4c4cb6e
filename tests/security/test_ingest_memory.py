"""Bounded ingest memory (issue 13 items 4 and 5, SPEC §7 "Fair share"): a batch is parsed
and written as a stream, so the server's peak memory for a request is a small multiple of
its size whatever its shape, and one long JSON string costs time linear in its length.

Against a real `s3dest serve`; the messages go to a disabled destination (held: accepted
and durable, no PUTs), so the figures are ingest's alone. Large bodies are checked in the
server's ingest worker processes: the peak is summed over the server and every process
below it, after a warm-up request that started a worker (its fixed ~60 MiB of imports
is not a request's)."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.support.builders import example_destination_fields
from tests.support.load import TreePeak, warm_ingest_workers
from tests.support.s3dest_server import S3destEnv, S3destProcess, serve

MiB = 1024 * 1024
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def server(s3dest_env: S3destEnv, tmp_path: Any) -> Iterator[S3destProcess]:
    s3dest_env.exec_process = True  # its RSS is measured: a process of its own imports
    process = serve(s3dest_env, tmp_path)
    try:
        yield process
    finally:
        process.kill()


def _http(server: S3destProcess, api_key: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {api_key}"}, timeout=300
    )


def _held_destination(http: httpx.Client, name: str = "held") -> None:
    created = http.post("/v1/destinations", json=example_destination_fields(name, enabled=False))
    assert created.status_code == 201, created.text


def _tiny(i: int) -> dict[str, Any]:
    return {
        "destination": "held",
        "action": "read",
        "provider": "p",
        "objectName": "o",
        "installationId": "i",
        "result": [{"fields": {"id": str(i)}}],
    }


def _warm(http: httpx.Client) -> None:
    """The ingest path once, small and large (imports, caches, an ingest worker process)."""
    warm = http.post("/v1/messages", content=orjson.dumps(_tiny(-1)), headers=JSON)
    assert warm.status_code == 202, warm.text
    warm_ingest_workers(str(http.base_url).rstrip("/"), http.headers["Authorization"][7:])
    time.sleep(0.5)


def test_a_big_batch_of_tiny_messages_peaks_within_4x_its_size(
    server: S3destProcess, project: tuple[str, str]
) -> None:
    """Issue 13 item 4: a 30 MB batch of 200,000 small messages took the server from 102 MB
    to 1,459 MB. Here ~12 MB of ~120-byte messages: the rise of the server's peak RSS over
    its resident size before the request must stay under 4 × the body (the bound of SPEC
    §7), and every accepted message must be stored."""
    _, api_key = project
    n = 100_000
    body = orjson.dumps({"messages": [_tiny(i) for i in range(n)]})
    assert server.proc is not None
    pid = server.proc.pid
    with _http(server, api_key) as http:
        _held_destination(http)
        _warm(http)
        peak = TreePeak(pid).start()
        response = http.post("/v1/messages", content=body, headers=JSON)
        rise_mb = peak.rise_mib()
        assert response.status_code == 202, response.text[:500]
        accepted = response.json()["accepted"]
        assert len(accepted) == n and len({a["eventId"] for a in accepted}) == n
        body_mb = len(body) / MiB
        print(f"\n{body_mb:.1f} MiB batch of {n} messages: peak RSS rise {rise_mb:.0f} MiB")
        assert rise_mb <= 4 * body_mb, (
            f"a {body_mb:.1f} MiB batch raised the server's peak RSS by {rise_mb:.0f} MiB "
            "(more than 4x)"
        )
        # No accepted message lost: a sample of them, first and last included, is stored.
        for i in [0, n - 1, *random.sample(range(n), 50)]:
            record = http.get(f"/v1/messages/{accepted[i]['eventId']}")
            assert record.status_code == 200 and record.json()["state"] == "held", record.text


def _long_string_message(size: int) -> bytes:
    head = (
        b'{"destination":"held","action":"read","provider":"p","objectName":"o",'
        b'"installationId":"i","result":[{"fields":{"id":"1","text":"'
    )
    return head + b"a" * size + b'"}}]}'


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_one_long_string_is_accepted_in_linear_time(
    server: S3destProcess, project: tuple[str, str]
) -> None:
    """Issue 13 item 5: a single 40 MiB string took ~10 s, 300 MiB ~450 s (ijson's default
    64 KiB buffer makes one long token quadratic, and the body was parsed twice). Timed
    here for 8 and 32 MiB (best of two each): linear time gives a ratio near 4, quadratic
    near 16; the bound of 8 is a generous margin, stated as such. The memory of the 32 MiB
    one is within 4x its size too (it was +150 MiB, 4.7x: a readline() of the item and
    copies held past their use; now ~3x)."""
    _, api_key = project
    took: dict[int, float] = {}
    rises: list[float] = []
    assert server.proc is not None
    with _http(server, api_key) as http:
        _held_destination(http)
        _warm(http)
        bodies = {mib: _long_string_message(mib * MiB) for mib in (8, 32)}
        # Interleaved (8, 32, 8, 32), best of two each: a burst of other load on the
        # machine then slows one of each size, not both of one.
        for mib in (8, 32, 8, 32):
            peak = TreePeak(server.proc.pid).start()
            began = time.monotonic()
            response = http.post("/v1/messages", content=bodies[mib], headers=JSON)
            took[mib] = min(took.get(mib, float("inf")), time.monotonic() - began)
            if mib == 32:
                rises.append(peak.rise_mib())
            assert response.status_code == 202, response.text[:300]
    ratio = took[32] / took[8]
    print(f"\nlong string: 8 MiB {took[8]:.2f} s, 32 MiB {took[32]:.2f} s, ratio {ratio:.1f}")
    print(f"peak RSS rises (MiB): {[round(r) for r in rises]}")
    assert ratio < 8, f"4x the string took {ratio:.1f}x the time: {took}"
    assert max(rises) <= 4 * 32, f"a 32 MiB string raised the peak RSS by {rises} MiB"
