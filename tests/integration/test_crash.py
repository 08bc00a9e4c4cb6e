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
    # 200 messages/s: above what moto absorbs (~130 PUTs/s here), so work is always queued
    # and in flight when the kill comes, yet the backlog drains in seconds.
    figures = crash_run(s3dest_env, tmp_path, s3_server, cycles=3, batch=20, rate=200)
    label = "PostgreSQL" if database_url else "SQLite"
    print("\n" + figures.line(label))
    assert figures.cycles == 3
    assert len(figures.acked) > 0 and figures.requests_ok > 0
    assert figures.missing == []
    assert figures.delivered == len(figures.acked)
