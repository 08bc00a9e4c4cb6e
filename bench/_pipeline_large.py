"""bench.pipeline's large message: one ~1 GiB message ingested over HTTP (streamed from a
file) and delivered, with the peak RSS of the server and its ingest workers against the
target, under a safety cap that kills the server.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from bench._databases import Database
from bench._messages import write_big_message
from bench._processes import (
    rss_mib,
    tree_peak_rss_mib,
)
from bench._report import LoadSampler, heading
from bench._s3_server import S3Server
from bench._server_run import start_s3dest

TARGET_RSS_MB = 300


@dataclass
class LargeFigures:
    ok: bool | None
    detail: str
    peak_mb: float = 0.0


def bench_large(
    s3: S3Server, db: Database, size: int, workdir: Path, rss_cap_mb: float
) -> LargeFigures:
    heading(f"one {size / 2**30:.2f} GiB message over HTTP on {db.kind}: ingest and deliver")
    run = start_s3dest(s3, s3.endpoint, db, workdir, f"large-{db.kind}")
    path = workdir / "big-ingest.json"
    peak_seen = [0.0]
    stop = threading.Event()
    capped = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                rss = rss_mib(run.pid)
            except OSError:
                return
            peak_seen[0] = max(peak_seen[0], rss)
            if rss > rss_cap_mb:
                capped.set()
                os.kill(run.pid, signal.SIGKILL)
                return
            time.sleep(0.1)

    try:
        started = time.perf_counter()
        written = write_big_message(path, size, wrapped=False, destination=run.destination)
        print(f"  wrote {written / 2**20:.0f} MiB in {time.perf_counter() - started:.1f} s")
        baseline = rss_mib(run.pid)
        print(f"  s3dest pid {run.pid}, RSS after start-up {baseline:.0f} MiB")
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        load = LoadSampler()
        load.sample()
        started = time.perf_counter()
        try:
            with run.http(timeout=1800) as http, path.open("rb") as body:
                response = http.post(
                    "/v1/messages",
                    content=body,
                    headers={"Content-Type": "application/json", "Content-Length": str(written)},
                )
        except httpx.HTTPError as exc:
            if capped.is_set():
                return _capped(rss_cap_mb, peak_seen[0])
            return LargeFigures(False, f"the request failed: {exc!r}")
        ingest_s = time.perf_counter() - started
        if response.status_code != 202:
            return LargeFigures(
                None if response.status_code in (413, 422) else False,
                f"POST /v1/messages answered {response.status_code}: {response.text[:300]}",
            )
        event_id = response.json()["accepted"][0]["eventId"]
        print(f"  202 after {ingest_s:.1f} s (event {event_id})")
        record: dict[str, Any] = {}
        with run.http() as http:
            deadline = time.monotonic() + 1800
            while time.monotonic() < deadline and not capped.is_set():
                record = http.get(f"/v1/messages/{event_id}").json()
                load.sample()
                if record.get("state") in ("delivered", "parked", "held"):
                    break
                time.sleep(0.5)
        if capped.is_set():
            return _capped(rss_cap_mb, peak_seen[0])
        total_s = time.perf_counter() - started
        peak = tree_peak_rss_mib(run.pid)  # ingest runs in the server's worker processes
        stop.set()
        if record.get("state") != "delivered":
            return LargeFigures(False, f"not delivered: {record}", peak * 1.048576)
        head = s3.client().head_object(Bucket=run.bucket, Key=record["key"])
        s3.client().delete_object(Bucket=run.bucket, Key=record["key"])  # moto holds it in RAM
        peak_mb = peak * 1.048576
        print(
            f"  delivered after {total_s:.1f} s: {record['key']} "
            f"({head['ContentLength'] / 2**20:.0f} MiB in the bucket)"
        )
        print(f"  peak RSS (VmHWM) of s3dest: {peak:.0f} MiB = {peak_mb:.0f} MB; {load.summary()}")
        return LargeFigures(
            peak_mb < TARGET_RSS_MB, f"{peak_mb:.0f} MB for {written / 2**30:.2f} GiB", peak_mb
        )
    finally:
        stop.set()
        run.stop()
        path.unlink(missing_ok=True)


def _capped(cap: float, seen: float) -> LargeFigures:
    return LargeFigures(
        False,
        f"s3dest's RSS passed the {cap:.0f} MiB safety cap (seen {seen:.0f} MiB) and it was "
        "killed: the body is held in memory somewhere (is the streaming ingest path in place?)",
        seen,
    )
