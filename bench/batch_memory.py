"""Batch memory (SPEC §9, issue 16): a process's peak RSS while it delivers a backlog of
large batches, with the batch memory budget and without it, in the same run.

    .venv/bin/python -m bench.batch_memory [--batches 24] [--lines 4000] [--size 4096]
                                           [--budget-mib 256] [--baseline DIR]
                                           [--compression none|gzip|zstd] [--skip-unbounded]

A fresh `s3dest serve --no-workers` (SQLite) takes `--batches` × `--lines` messages of
~`--size` bytes over HTTP for one destination batching `maxMessages: --lines`, `maxBytes:
64 MiB`, `compression: --compression` (default none: the object as large as its lines,
the worst case; a backlog, as after an outage of the bucket or of the worker); then `s3dest
serve` with its workers starts on that database and delivers it to a throwaway Ceph RGW.
While it does, another project sends one ~1 KiB message every 0.1 s to an unbatched
destination of its own: its accept → delivered latency (from the database, afterwards)
tells whether one tenant's batches hold up another's delivery. Printed per run: the
delivering server's peak RSS (VmHWM), its RSS before the backlog was sealed, the wall
time, the objects in the bucket, the other tenant's latency p50 / p99 / max. The runs:
`S3DEST_BATCH_MEMORY_BYTES` at `--budget-mib`, then at 1 TiB (no bound: every sender
builds its batch at once); with `--baseline DIR` (another checkout, e.g. `git worktree
add /tmp/base <commit>`), a third run whose server runs that checkout's `src/`
(PYTHONPATH): before the budget, the coordinator built every claimed leader's object at
dispatch. Each run's bucket is checked: `--batches` objects of `--lines` lines each.
"""

from __future__ import annotations

import argparse
import gzip
import sqlite3
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import zstandard
from bench._messages import ingest_message
from bench._processes import peak_rss_mib, proc_status_kib
from bench._report import heading, machine_line, percentile
from bench._server_run import ServerRun, _send_all
from tests.support.builders import destination_fields
from tests.support.rgw import start_rgw
from tests.support.rgw_server import RgwServer
from tests.support.s3dest_server import S3destEnv, serve

MIB = 1024 * 1024


@dataclass
class Backlog:
    env: S3destEnv
    bucket: str
    other_key: str  # the other project's API key
    other_destination: str  # its destination's id


def _destination(run: ServerRun, fields: dict[str, Any]) -> str:
    with run.http() as http:
        response = http.post("/v1/destinations", json=fields)
    if response.status_code != 201:
        raise RuntimeError(f"destination not created: {response.text}")
    return str(response.json()["id"])


def _backlog(
    rgw: RgwServer,
    workdir: Path,
    name: str,
    batches: int,
    lines: int,
    size: int,
    src: Path | None,
    compression: str,
) -> Backlog:
    """A database holding the backlog, and the other project, no server running."""
    extra = {"S3DEST_SECRET_KEY": ""}
    if src is not None:
        extra["PYTHONPATH"] = str(src)
    env = S3destEnv(data_dir=workdir / name / "data", extra=extra, exec_process=True)
    env.data_dir.mkdir(parents=True, exist_ok=True)
    project_id, api_key = env.create_project(f"bench-{name}")
    _, other_key = env.create_project(f"other-{name}")
    bucket = rgw.create_bucket()
    run = ServerRun(
        env, serve(env, workdir / name, "--no-workers"), api_key, "bench", bucket, project_id
    )
    try:
        fields = destination_fields(rgw, bucket, "bench")  # type: ignore[arg-type]
        fields["batch"] = {
            "maxMessages": lines,
            "maxBytes": 64 * MIB,
            "maxSeconds": 3600,
            "compression": compression,
        }
        _destination(run, fields)
        other = ServerRun(env, run.process, other_key, "other", bucket, "")
        other_destination = _destination(
            other,
            destination_fields(rgw, rgw.create_bucket(), "other"),  # type: ignore[arg-type]
        )
        messages = [
            ingest_message(i, destination="bench", size=size) for i in range(batches * lines)
        ]
        bodies = [
            orjson.dumps({"messages": messages[i : i + 100]}) for i in range(0, len(messages), 100)
        ]
        del messages
        _, errors = _send_all(run, bodies, 3)
        if errors:
            print(f"  {len(errors)} ingest requests were retried, e.g. {errors[0]}")
    finally:
        run.stop()
    return Backlog(env, bucket, other_key, other_destination)


def _other_tenant(url: str, api_key: str, stop: threading.Event) -> int:
    """One message every 0.1 s until `stop`; returns how many were accepted."""
    sent = 0
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {api_key}"}, timeout=60
    ) as http:
        while not stop.wait(0.1):
            message = ingest_message(1_000_000 + sent, destination="other")
            if http.post("/v1/messages", json={"messages": [message]}).status_code == 202:
                sent += 1
    return sent


def _latencies(env: S3destEnv, destination_id: str) -> list[float]:
    with sqlite3.connect(env.data_dir / "s3dest.db") as conn:
        rows = conn.execute(
            "SELECT delivered_at - accepted_at FROM messages WHERE destination_id = ? "
            "AND delivered_at IS NOT NULL",
            (destination_id,),
        ).fetchall()
    return sorted(float(r[0]) for r in rows)


def _objects(rgw: RgwServer, bucket: str) -> list[int]:
    """Lines per object in the bucket."""
    s3 = rgw.client()
    counts = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            raw = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            if item["Key"].endswith(".gz"):
                raw = gzip.decompress(raw)
            elif item["Key"].endswith(".zst"):
                raw = zstandard.ZstdDecompressor().decompress(raw)
            counts.append(raw.count(b"\n"))
    return counts


def bench_budget(
    rgw: RgwServer,
    workdir: Path,
    label: str,
    budget: int,
    batches: int,
    lines: int,
    size: int,
    src: Path | None = None,
    compression: str = "none",
) -> float:
    name = f"run-{len(list(workdir.iterdir()))}"
    heading(f"{label}: {batches} batches of {lines} messages of ~{size} bytes")
    backlog = _backlog(rgw, workdir, name, batches, lines, size, src, compression)
    env, bucket = backlog.env, backlog.bucket
    env.extra["S3DEST_BATCH_MEMORY_BYTES"] = str(budget)
    process = serve(env, workdir / name)
    assert process.proc is not None
    pid = process.proc.pid
    stop = threading.Event()
    sent: list[int] = []
    other = threading.Thread(
        target=lambda: sent.append(_other_tenant(process.url, backlog.other_key, stop))
    )
    other.start()
    try:
        started_kib = proc_status_kib(pid, "VmRSS")
        wall0 = time.perf_counter()
        deadline = time.monotonic() + 1800
        s3 = rgw.client()
        while True:
            listed = s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0)
            if listed >= batches:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{listed} of {batches} batches delivered")
            time.sleep(0.2)
        wall = time.perf_counter() - wall0
        peak = peak_rss_mib(pid)
        stop.set()
        other.join(60)
        time.sleep(1.0)  # the other tenant's last messages delivered and recorded
    finally:
        stop.set()
        process.terminate(timeout=60)
        process.kill()
    counts = _objects(rgw, bucket)
    if sorted(counts) != [lines] * batches:
        raise RuntimeError(f"the bucket's objects hold {counts} lines, not {batches} x {lines}")
    latencies = _latencies(env, backlog.other_destination)
    if not latencies:
        raise RuntimeError("none of the other tenant's messages was delivered")
    print(
        f"  peak RSS {peak:.0f} MiB (at start {started_kib / 1024:.0f} MiB); {batches} objects "
        f"of {lines} lines in {wall:.1f} s"
    )
    print(
        f"  the other tenant: {len(latencies)} of {sum(sent)} messages delivered meanwhile, "
        f"accept → delivered p50 {1000 * percentile(latencies, 50):.0f} ms, "
        f"p99 {1000 * percentile(latencies, 99):.0f} ms, max {1000 * latencies[-1]:.0f} ms"
    )
    return peak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=24)
    parser.add_argument("--lines", type=int, default=4000)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--budget-mib", type=int, default=256)
    parser.add_argument("--skip-unbounded", action="store_true", help="no run without a bound")
    parser.add_argument("--compression", choices=["none", "gzip", "zstd"], default="none")
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout's src/")
    args = parser.parse_args(argv)
    if args.baseline is not None and not (args.baseline / "src" / "s3dest").is_dir():
        parser.error(f"--baseline {args.baseline}: no src/s3dest there")
    runs: list[tuple[str, int, Path | None]] = [
        (f"budget {args.budget_mib} MiB", args.budget_mib * MIB, None),
    ]
    if not args.skip_unbounded:
        runs.append(("no bound (1 TiB)", 1024 * 1024 * MIB, None))
    if args.baseline is not None:
        runs.append((f"baseline {args.baseline}", args.budget_mib * MIB, args.baseline / "src"))
    print(machine_line())
    rgw = start_rgw()
    print(f"Ceph RGW {rgw.endpoint}, booted in {rgw.boot_seconds:.1f} s")
    peaks: dict[str, float] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="s3dest-bench-batch-memory-") as tmp:
            for label, budget, src in runs:
                peaks[label] = bench_budget(
                    rgw,
                    Path(tmp),
                    label,
                    budget,
                    args.batches,
                    args.lines,
                    args.size,
                    src,
                    args.compression,
                )
    finally:
        rgw.stop()
    heading("summary")
    for label, peak in peaks.items():
        print(f"  {label:<40} peak RSS {peak:7.0f} MiB")
    print(f"\n{machine_line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
