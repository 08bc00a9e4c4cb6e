"""The database goes away under s3dest: never a 202 for a message that was not stored.

A full disk and a read-only data directory are made real with a small tmpfs (this needs
root, which CI has); the PostgreSQL server is restarted while messages flow.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.support.builders import create_destination, message
from tests.support.checks import bucket_keys
from tests.support.moto_server import S3Server
from tests.support.polling import wait_settled_and_delivered
from tests.support.postgres import PostgresCluster
from tests.support.requirements import require_root
from tests.support.s3dest_server import S3destEnv, S3destProcess, serve


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    # Mounting needs root; CI runs as root. Without it this failure mode cannot be staged.
    # A failure, not a skip, under CI (see tests/support/requirements.py).
    require_root("mounting a tmpfs")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _server_on(data_dir: Path, log_dir: Path) -> tuple[S3destProcess, str]:
    env = S3destEnv(data_dir=data_dir, extra={"S3DEST_SECRET_KEY": ""})
    _, key = env.create_project("disk")
    return serve(env, log_dir), key


def test_full_disk_gives_503_and_loses_nothing_accepted(
    small_disk: Path, tmp_path: Path, s3_server: S3Server, bucket: str
) -> None:
    server, key = _server_on(small_disk / "data", tmp_path)
    try:
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        ) as http:
            create_destination(http, s3_server, bucket, "dest")
            filler = small_disk / "filler"
            with filler.open("wb") as out:  # fill the disk to the last byte
                try:
                    while True:
                        out.write(b"\0" * 65536)
                        out.flush()
                except OSError:
                    pass
            accepted: list[str] = []
            refused = 0
            for i in range(0, 4000, 100):
                response = http.post(
                    "/v1/messages",
                    json={"messages": [message(i + j, "dest", pad=0) for j in range(100)]},
                )
                if response.status_code == 202:
                    accepted.extend(a["eventId"] for a in response.json()["accepted"])
                else:
                    assert response.status_code == 503, response.text
                    error = response.json()["error"]
                    assert error["code"] == "storage_unavailable"
                    assert error["message"].startswith(
                        "the database disk is full; nothing was stored"
                    ), error
                    refused += 1
            assert refused > 0, "the disk never filled up"
            filler.unlink()  # free the space: everything that got a 202 must arrive
            wait_settled_and_delivered(http, accepted)
            keys = bucket_keys(s3_server, bucket)
            assert all(any(e in k for k in keys) for e in accepted)
            assert http.get("/healthz").status_code == 200
    finally:
        server.kill()


def test_read_only_data_dir_is_refused_with_a_clear_message(
    small_disk: Path, tmp_path: Path, s3_server: S3Server, bucket: str
) -> None:
    # A mount with files open for writing cannot be made read-only (EBUSY), so the data
    # directory turns read-only between two runs, as after a remount by an operator.
    data_dir = small_disk / "data"
    server, key = _server_on(data_dir, tmp_path)
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as http:
        create_destination(http, s3_server, bucket, "dest")
        first = http.post("/v1/messages", json=message(1, "dest", pad=0))
        assert first.status_code == 202
        wait_settled_and_delivered(http, [first.json()["accepted"][0]["eventId"]])
    server.kill()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    env = S3destEnv(data_dir=data_dir, extra={"S3DEST_SECRET_KEY": ""})
    result = env.cli("serve", "--port", "1", check=False, timeout=60)
    assert result.returncode != 0
    assert f"the data directory {data_dir.resolve()} is read-only" in result.stderr, result.stderr
    subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)


def test_postgres_restart_under_load_loses_nothing(
    postgres_cluster: PostgresCluster,
    pg_database_url: str,
    tmp_path: Path,
    s3_server: S3Server,
    bucket: str,
) -> None:
    """PostgreSQL stopped (`immediate`, like a crash) for 2 s while ~200 messages/s arrive:
    ingest answers 503 `storage_unavailable` while the database is away, never 202; every
    message that got a 202 is in the bucket afterwards.

    The outage is shown to have been met: at least one 503 came back, and every request
    sent after the stop and answered before the start was refused (each response is
    stamped with its send and answer times). Catches the planted bug: a restart that never
    stopped the server (`PostgresCluster.stop("immediate")` and `start` returning at once):
    only 202s during the "outage"; the test used to pass then, its only check being that
    the statuses were a subset of {202, 503, -1}. Unplanted: 16 requests inside the 2 s,
    all 503.
    """
    env = S3destEnv(
        data_dir=tmp_path / "data", database_url=pg_database_url, extra={"S3DEST_SECRET_KEY": ""}
    )
    _, key = env.create_project("pg-restart")
    server = serve(env, tmp_path)
    accepted: list[str] = []
    # (sent at, answered at, status or -1 for no answer, error code)
    answers: list[tuple[float, float, int, str]] = []
    stop = threading.Event()
    try:
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        ) as http:
            create_destination(http, s3_server, bucket, "dest")

            def send() -> None:
                with httpx.Client(
                    base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
                ) as sender:
                    i = 0
                    while not stop.is_set():
                        sent = time.monotonic()
                        try:
                            r = sender.post(
                                "/v1/messages",
                                json={
                                    "messages": [message(i + j, "dest", pad=0) for j in range(20)]
                                },
                            )
                        except httpx.HTTPError:
                            answers.append((sent, time.monotonic(), -1, ""))
                            continue
                        code = (
                            r.json().get("error", {}).get("code", "")
                            if r.status_code >= 400
                            else ""
                        )
                        answers.append((sent, time.monotonic(), r.status_code, code))
                        if r.status_code == 202:
                            accepted.extend(a["eventId"] for a in r.json()["accepted"])
                        i += 20
                        # ~200 messages/s: above what moto absorbs, so the queue is busy
                        # when the database goes away, and the backlog drains in seconds.
                        time.sleep(0.1)

            sender_thread = threading.Thread(target=send)
            sender_thread.start()
            time.sleep(2)
            try:
                postgres_cluster.stop("immediate")
                down = time.monotonic()
                time.sleep(2.0)
                up = time.monotonic()
            finally:
                postgres_cluster.start()
            time.sleep(3)
            stop.set()
            sender_thread.join(60)
            assert accepted, "nothing was accepted"
            statuses = [status for _, _, status, _ in answers]
            # While the database was down the API said so; it never claimed success.
            assert set(statuses) <= {202, 503, -1}, statuses
            assert all(code == "storage_unavailable" for *_, s, code in answers if s == 503)
            during = [status for sent, got, status, _ in answers if sent >= down and got <= up]
            print(f"\nduring the outage: {during}; in all: {statuses.count(503)} x 503")
            assert during and set(during) <= {503}, during  # the outage was met, and refused
            wait_settled_and_delivered(http, accepted, timeout=180)
            keys = bucket_keys(s3_server, bucket)
            missing = [e for e in accepted if not any(e in k for k in keys)]
            assert not missing
    finally:
        stop.set()
        server.kill()
