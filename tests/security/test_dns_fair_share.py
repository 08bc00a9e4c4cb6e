"""A tenant whose endpoint's host name resolves slowly must not stall the others (SPEC §7
"Fair share"): the save-time lookup of `endpointUrl`'s host runs on threads of its own,
bounded per project and in all, and gives up after S3DEST_DNS_TIMEOUT_SECONDS with a 422
on endpointUrl.

The server is started with tests/support/slow_dns on its PYTHONPATH: inside that process
only, names under `.slow-dns.test` take 30 s to resolve (a blocking `getaddrinfo`, as a
DNS server that does not answer makes it); no DNS server is asked. SQLite only: the lookup
happens before anything is stored, whatever the database.

Failed before the fix: the lookup ran on the thread serving the request, so 40 saves of
tenant A held all 40 of the threads that serve requests, and tenant B's GET waited for the
first lookup to end (~30 s); each of A's saves then took 30 s and was accepted.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import httpx

from tests.support.builders import example_destination_fields
from tests.support.load import LatencyProbe
from tests.support.s3dest_server import S3destEnv, serve

SLOW_DNS = Path(__file__).parent.parent / "support" / "slow_dns"
#: Generous: B's GET takes ~10–50 ms; before the fix it waited ~30 s.
MAX_MARGIN_S = 2.0
SAVES = 40  # as many as the threads that serve requests (Starlette's default pool)
TIMEOUT_S = 2  # S3DEST_DNS_TIMEOUT_SECONDS of this server


def _client(url: str, api_key: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {api_key}"}
    return httpx.Client(base_url=url, headers=headers, timeout=120)


def test_saves_that_hang_on_dns_leave_another_tenant_fast(tmp_path: Path) -> None:
    env = S3destEnv(
        data_dir=tmp_path / "data",
        extra={
            "S3DEST_SECRET_KEY": "",
            "PYTHONPATH": str(SLOW_DNS),
            "S3DEST_TEST_DNS_DELAY": "30",
            "S3DEST_DNS_TIMEOUT_SECONDS": str(TIMEOUT_S),
        },
    )
    # The projects are made in this process (the slow resolver is the server's only).
    plain = replace(env, extra={})
    _, key_a = plain.create_project("a")
    _, key_b = plain.create_project("b")
    server = serve(env, tmp_path)
    try:
        with _client(server.url, key_a) as a, _client(server.url, key_b) as b:
            created = b.post("/v1/destinations", json=example_destination_fields("d"))
            assert created.status_code == 201, created.text
            probe = LatencyProbe(lambda: b.get("/v1/destinations")).start()
            began = time.monotonic()
            with ThreadPoolExecutor(SAVES) as pool:
                saves = [
                    pool.submit(
                        a.post,
                        "/v1/destinations",
                        json=example_destination_fields(
                            f"slow-{n}", endpointUrl=f"https://bucket-{n}.slow-dns.test"
                        ),
                    )
                    for n in range(SAVES)
                ]
                time.sleep(TIMEOUT_S + 2)  # A's lookups are hanging, or have timed out
                latencies = probe.stop()
                answers = [s.result() for s in saves]
            took = time.monotonic() - began
    finally:
        server.kill()
    assert not probe.failures, probe.failures[:3]
    assert max(latencies) < MAX_MARGIN_S, f"B's GET took {max(latencies):.2f} s at worst"
    assert len(latencies) >= 10, latencies
    assert took < 25, f"A's saves took {took:.1f} s: they waited for the lookups"
    statuses = sorted(r.status_code for r in answers)
    timed_out = [r for r in answers if r.status_code == 422]
    busy = [r for r in answers if r.status_code == 429]
    assert timed_out and len(timed_out) + len(busy) == SAVES, statuses
    error = timed_out[0].json()["error"]
    assert set(error["fields"]) == {"endpointUrl"}, error
    assert f"did not resolve within {TIMEOUT_S} s" in error["fields"]["endpointUrl"], error
    assert busy, statuses  # the per-project bound: the rest were refused at once
    assert int(busy[0].headers["Retry-After"]) >= 1
    assert "S3DEST_PROJECT_DNS_LOOKUPS" in busy[0].json()["error"]["message"]
