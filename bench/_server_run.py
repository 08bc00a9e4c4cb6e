"""An `s3dest serve` started for a benchmark (bench.pipeline, bench.batching, bench.ingest):
a project, a bucket and a destination on it; batches of ingest messages posted from a few
sender threads; the wait until the database says they are delivered.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
from bench._databases import Database
from bench._messages import ingest_message
from bench._report import LoadSampler
from bench._s3_server import S3Server
from tests.support.builders import create_destination
from tests.support.s3dest_server import S3destEnv, S3destProcess, serve


@dataclass
class ServerRun:
    env: S3destEnv
    process: S3destProcess
    api_key: str
    destination: str
    bucket: str
    project_id: str

    @property
    def pid(self) -> int:
        assert self.process.proc is not None
        return self.process.proc.pid

    def http(self, timeout: float = 60) -> httpx.Client:
        return httpx.Client(
            base_url=self.process.url,
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=timeout,
        )

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.process.terminate(timeout=30)
        self.process.kill()


def start_s3dest(
    s3: S3Server, endpoint: str, db: Database, workdir: Path, name: str, **extra_env: str
) -> ServerRun:
    env = S3destEnv(
        data_dir=workdir / name / "data",
        database_url=db.url,
        extra={"S3DEST_SECRET_KEY": "", **extra_env},
        exec_process=True,  # its CPU and memory are what is measured
    )
    env.data_dir.mkdir(parents=True, exist_ok=True)
    project_id, api_key = env.create_project(f"bench-{name}")  # runs may share a database
    bucket = s3.create_bucket()
    process = serve(env, workdir / name)
    run = ServerRun(env, process, api_key, "bench", bucket, project_id)
    try:
        with run.http() as http:
            create_destination(http, s3, bucket, "bench", endpoint=endpoint)
    except BaseException:
        run.stop()
        raise
    return run


def _batches(n: int, batch: int, destination: str, start: int) -> list[bytes]:
    messages = [ingest_message(start + i, destination=destination) for i in range(n)]
    return [
        orjson.dumps({"messages": messages[i : i + batch]}) for i in range(0, len(messages), batch)
    ]


def _send_all(run: ServerRun, bodies: list[bytes], senders: int) -> tuple[list[float], list[str]]:
    """POST every body from `senders` threads; (per-request seconds, errors)."""
    lock = threading.Lock()
    indexes = iter(range(len(bodies)))
    timings: list[float] = []
    errors: list[str] = []

    def sender() -> None:
        with run.http() as http:
            while True:
                with lock:
                    i = next(indexes, None)
                if i is None:
                    return
                for attempt in range(5):
                    started = time.perf_counter()
                    response = http.post(
                        "/v1/messages",
                        content=bodies[i],
                        headers={"Content-Type": "application/json"},
                    )
                    elapsed = time.perf_counter() - started
                    if response.status_code == 202:
                        with lock:
                            timings.append(elapsed)
                        break
                    with lock:
                        errors.append(f"{response.status_code} {response.text[:200]}")
                    time.sleep(0.5 * (attempt + 1))

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return timings, errors


def _wait_delivered(
    db: Database, run: ServerRun, total: int, load: LoadSampler, timeout: float
) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        counts = db.waiting_states(run.env, run.project_id)
        load.sample()
        if db.kind == "postgres" and not counts:
            counts = db.count_states(run.env, run.project_id)  # once, at the end
        if counts.get("delivered", 0) >= total:
            return counts
        if counts.get("parked", 0) or counts.get("held", 0):
            raise RuntimeError(f"messages parked or held: {counts}\n{run.process.log()[-3000:]}")
        if run.process.proc is not None and run.process.proc.poll() is not None:
            raise RuntimeError(f"s3dest exited:\n{run.process.log()[-3000:]}")
        time.sleep(0.25)
    raise RuntimeError(f"not all delivered within {timeout:.0f} s: {counts}")
