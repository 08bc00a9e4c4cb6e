"""The worker's concurrency bounds hold, as S3 sees them, and are actually reached.

S3DEST_WORKER_CONCURRENCY bounds the PUTs one process has in flight, and
S3DEST_PER_DESTINATION_CONCURRENCY those it has in flight to one destination. A real
`s3dest serve` runs with small bounds (6 overall, 4 per destination) against two destinations
on two buckets, both behind the proxy of tests/support/fault_proxy.py (no faults), which holds
every PUT for a while so that PUTs overlap, and counts the most it had in flight at once,
overall and per bucket.

The messages go in blocks of one destination at a time, alternating, so that the queue (claimed
in arrival order) offers more of one destination than its bound at once — within a block the
per-destination bound is what stops the worker — and both destinations at a block's edge,
where the overall bound does. Both maxima must equal their bound (never more: the bound
holds; never less: there was concurrency to bound at all).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.builders import create_destination, message, send_in_batches
from tests.support.checks import assert_all_delivered
from tests.support.fault_proxy import FaultProxy
from tests.support.moto_server import S3Server
from tests.support.polling import wait_queue_empty
from tests.support.s3dest_server import S3destEnv, serve

WORKER_CONCURRENCY = 6
PER_DESTINATION = 4
PUT_DELAY = 0.15  # seconds the proxy holds each PUT: long enough for PUTs to overlap
MESSAGES_PER_DESTINATION = 30
BLOCK = 10  # messages to one destination in a row (one POST), then the other's


@pytest.fixture
def proxy(s3_server: S3Server) -> Iterator[FaultProxy]:
    proxy = FaultProxy(s3_server.endpoint, put_delay_seconds=PUT_DELAY).start()
    try:
        yield proxy
    finally:
        proxy.stop()


# The bounds live in the worker, not in the queue: one database is enough.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_in_flight_puts_stay_within_and_reach_the_configured_bounds(
    s3dest_env: S3destEnv, tmp_path: Path, s3_server: S3Server, proxy: FaultProxy
) -> None:
    s3dest_env.extra.update(
        {
            "S3DEST_WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
            "S3DEST_PER_DESTINATION_CONCURRENCY": str(PER_DESTINATION),
        }
    )
    _, api_key = s3dest_env.create_project("concurrency")
    server = serve(s3dest_env, tmp_path)
    try:
        buckets = {"alpha": s3_server.create_bucket(), "beta": s3_server.create_bucket()}
        sent: dict[str, list[str]] = {name: [] for name in buckets}
        started = time.monotonic()
        with server.client(api_key) as client:
            for name, bucket in buckets.items():
                create_destination(client, s3_server, bucket, name, endpointUrl=proxy.url)
            for first in range(0, MESSAGES_PER_DESTINATION, BLOCK):
                for name in buckets:
                    block = (message(i, destination=name) for i in range(first, first + BLOCK))
                    sent[name] += send_in_batches(client, block, size=BLOCK)
        wait_queue_empty(server, api_key, timeout=60)
        elapsed = time.monotonic() - started

        for name, bucket in buckets.items():
            assert len(sent[name]) == MESSAGES_PER_DESTINATION
            assert_all_delivered(server, api_key, s3_server, bucket, sent[name])
    except BaseException:
        print("-- s3dest log tail --\n" + server.log()[-3000:])
        raise
    finally:
        server.kill()

    stats = proxy.stats()
    figures = {
        "max_in_flight": stats.max_in_flight,
        "max_in_flight_by_bucket": stats.max_in_flight_by_bucket,
        "puts": sum(stats.puts_acknowledged.values()),
        "seconds": round(elapsed, 2),
    }
    print("concurrency figures:", figures)
    assert set(stats.max_in_flight_by_bucket) == set(buckets.values()), figures
    # The bounds hold: never more PUTs in flight than configured, per destination and overall.
    for bucket, most in stats.max_in_flight_by_bucket.items():
        assert most <= PER_DESTINATION, f"{bucket}: {most} PUTs in flight at once; {figures}"
    assert stats.max_in_flight <= WORKER_CONCURRENCY, figures
    # And they were reached: otherwise the checks above would pass with no concurrency at all.
    assert max(stats.max_in_flight_by_bucket.values()) == PER_DESTINATION, figures
    assert stats.max_in_flight >= WORKER_CONCURRENCY - 1, figures
