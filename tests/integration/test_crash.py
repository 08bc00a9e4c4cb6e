"""Crash test (small N): kill -9 `s3dest serve` at random moments while it ingests and
delivers, restart, repeat; every message that got a 202 ends up in the bucket.

The same code runs longer as `python -m bench.crash`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.crash import crash_run
from tests.support.moto_server import S3Server
from tests.support.s3dest_server import S3destEnv


@pytest.mark.timeout(900)
def test_kill_9_while_ingesting_and_delivering_loses_nothing(
    s3dest_env: S3destEnv, tmp_path: Path, s3_server: S3Server, database_url: str | None
) -> None:
    """Every kill met accepted-but-undelivered messages (and some kill met messages a worker
    had leased), read from s3dest's database while the process was dead; afterwards every
    acknowledged message is in the bucket with its own body, read from S3 (not from the API).

    Catches the planted bugs: reclaimed leases of a dead process marked `delivered` instead
    of `queued` (`store.queue.operations.reap_expired_leases`): missing > 0; a harness whose
    kills meet no work (the sender stopped and the queue drained before each kill, so a
    kill proved nothing): the cut-off counts are 0. Before, `delivered` was
    `len(acked) - len(missing)` with missing taken from the API's records, and nothing
    showed that a kill had cut anything off.
    """
    # 200 messages/s: above what moto absorbs (~130 PUTs/s here), so work is always queued
    # and in flight when the kill comes, yet the backlog drains in seconds.
    figures = crash_run(s3dest_env, tmp_path, s3_server, cycles=3, batch=20, rate=200)
    label = "PostgreSQL" if database_url else "SQLite"
    print("\n" + figures.line(label))
    assert figures.cycles == 3 and len(figures.at_kill) == 3
    assert len(figures.acked) > 0 and figures.requests_ok > 0
    # The kills cut work off: accepted messages not yet in S3 at every kill, and at least
    # one kill with messages claimed by a worker (their PUT possibly half done).
    assert all(c.undelivered > 0 for c in figures.at_kill), figures.line(label)
    assert sum(c.in_flight for c in figures.at_kill) > 0, figures.line(label)
    # From the bucket: every acknowledged event id has its object, with its own body.
    assert figures.missing == [], figures.missing[:10]
    assert figures.delivered == len(set(figures.acked)) == len(figures.acked)
    assert figures.objects >= figures.delivered
