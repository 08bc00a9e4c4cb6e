"""Batching (SPEC §9, issue 16): requests, bytes and CPU, one object per message vs batched.

    .venv/bin/python -m bench.batching [--db sqlite|postgres|both] [--messages 10000]
                                       [--max-messages 500]

For each database, the same N messages of ~1 KiB go over HTTP (batches of 100, 4 senders)
into a fresh `s3dest serve` whose destination is in turn: unbatched (the product page's one
object per message: the baseline, in the same run), batched with gzip, batched with zstd.
The destination writes to a throwaway Ceph RGW (keeps connections alive, as S3 does)
through a counting proxy (tests/support/fault_proxy.py, no faults), which tells the S3
requests made; the bucket listing tells the objects and bytes stored. Printed per run:
S3 requests, objects, bytes stored, CPU of the s3dest process (and of the PostgreSQL
server) per message, wall time; then each batched run against the unbatched one.

Every run is checked: all N delivered, and the objects' lines (decompressed) are N.
"""

from __future__ import annotations

import argparse
import gzip
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zstandard
from bench._databases import Database, databases
from bench._processes import proc_cpu_seconds
from bench._report import heading, machine_line
from bench._server_run import ServerRun, _batches, _send_all
from tests.support.builders import destination_fields
from tests.support.fault_proxy import FaultProxy
from tests.support.rgw import start_rgw
from tests.support.rgw_server import RgwServer
from tests.support.s3dest_server import S3destEnv, serve

MODES: dict[str, dict[str, Any] | None] = {
    "one object per message": None,
    "batched, gzip": {"compression": "gzip"},
    "batched, zstd": {"compression": "zstd"},
}


@dataclass
class Figures:
    mode: str
    messages: int
    requests: int
    objects: int
    stored_bytes: int
    cpu: float
    db_cpu: float
    wall: float

    @property
    def cpu_ms(self) -> float:
        return 1000 * (self.cpu + self.db_cpu) / self.messages


def _start(
    rgw: RgwServer, proxy: FaultProxy, db: Database, workdir: Path, name: str, batch: Any
) -> ServerRun:
    env = S3destEnv(
        data_dir=workdir / name / "data",
        database_url=db.url,
        extra={"S3DEST_SECRET_KEY": ""},
        exec_process=True,  # its CPU is what is measured
    )
    env.data_dir.mkdir(parents=True, exist_ok=True)
    project_id, api_key = env.create_project(f"bench-{name}")
    bucket = rgw.create_bucket()
    run = ServerRun(env, serve(env, workdir / name), api_key, "bench", bucket, project_id)
    fields = destination_fields(rgw, bucket, "bench", endpoint=proxy.url)  # type: ignore[arg-type]
    if batch is not None:
        fields["batch"] = batch
    with run.http() as http:
        response = http.post("/v1/destinations", json=fields)
        if response.status_code != 201:
            run.stop()
            raise RuntimeError(f"destination not created: {response.text}")
    return run


def _stored(rgw: RgwServer, bucket: str) -> tuple[int, int, int]:
    """(objects, bytes stored, lines in them once decompressed)."""
    s3 = rgw.client()
    objects = stored = lines = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            objects += 1
            stored += int(item["Size"])
            if item["Key"].endswith(".json"):
                lines += 1  # one message per object: nothing to decompress
                continue
            got = s3.get_object(Bucket=bucket, Key=item["Key"])
            raw = got["Body"].read()
            encoding = got.get("ContentEncoding")
            if encoding == "gzip":
                raw = gzip.decompress(raw)
            elif encoding == "zstd":
                raw = zstandard.ZstdDecompressor().decompress(raw)
            lines += raw.count(b"\n")
    return objects, stored, lines


def bench_mode(
    rgw: RgwServer,
    db: Database,
    mode: str,
    n: int,
    max_messages: int,
    workdir: Path,
) -> Figures:
    heading(f"{mode} on {db.kind}: {n} messages of ~1 KiB")
    options = MODES[mode]
    batch = None if options is None else {"maxMessages": max_messages, "maxSeconds": 5, **options}
    proxy = FaultProxy(rgw.endpoint).start()
    run = _start(rgw, proxy, db, workdir, f"{db.kind}-{mode.split(',')[-1].strip()}", batch)
    try:
        bodies = _batches(n, 100, run.destination, 0)
        requests0 = proxy.stats().requests
        cpu0, db_cpu0 = proc_cpu_seconds(run.pid), db.server_cpu_seconds()
        wall0 = time.perf_counter()
        _, errors = _send_all(run, bodies, 4)
        deadline = time.monotonic() + 900
        while True:  # polled cheaply: see Database.waiting_states
            counts = db.waiting_states(run.env, run.project_id)
            if db.kind == "postgres" and not counts:
                counts = db.count_states(run.env, run.project_id)
            if counts.get("delivered", 0) >= n:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"not delivered: {counts}")
            time.sleep(0.1)
        wall = time.perf_counter() - wall0
        cpu, db_cpu = proc_cpu_seconds(run.pid) - cpu0, db.server_cpu_seconds() - db_cpu0
        requests = proxy.stats().requests - requests0
        if errors:
            print(f"  {len(errors)} ingest requests were retried, e.g. {errors[0]}")
    finally:
        run.stop()
        proxy.stop()
    objects, stored, lines = _stored(rgw, run.bucket)
    if lines != n:
        raise RuntimeError(f"{mode}: the bucket holds {lines} messages, not {n}")
    f = Figures(mode, n, requests, objects, stored, cpu, db_cpu, wall)
    db_part = f", PostgreSQL server {1000 * db_cpu / n:.3f}" if db.pg is not None else ""
    print(
        f"  {requests:,} S3 requests, {objects:,} objects, {stored:,} bytes stored; "
        f"CPU {1000 * cpu / n:.3f} ms/msg (s3dest){db_part}; {wall:.1f} s"
    )
    return f


def _print_comparison(db: str, figures: list[Figures]) -> None:
    base = figures[0]
    heading(f"{db}: batched against one object per message (same run)")
    print(f"  {'':24} {'requests':>9} {'objects':>8} {'bytes':>12} {'CPU ms/msg':>11} {'wall':>7}")
    for f in figures:
        print(
            f"  {f.mode:24} {f.requests:9,} {f.objects:8,} {f.stored_bytes:12,} "
            f"{f.cpu_ms:11.3f} {f.wall:6.1f}s"
        )
    for f in figures[1:]:
        print(
            f"  {f.mode}: {base.requests / max(f.requests, 1):.0f}x fewer requests, "
            f"{base.stored_bytes / max(f.stored_bytes, 1):.1f}x fewer bytes, "
            f"{base.cpu_ms / f.cpu_ms:.1f}x less CPU per message"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--max-messages", type=int, default=500)
    args = parser.parse_args(argv)
    print(machine_line())
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    rgw = start_rgw()
    print(f"Ceph RGW {rgw.endpoint}, booted in {rgw.boot_seconds:.1f} s")
    try:
        with (
            tempfile.TemporaryDirectory(prefix="s3dest-bench-batching-") as tmp,
            databases(kinds) as dbs,
        ):
            for kind in kinds:
                figures = [
                    bench_mode(rgw, dbs[kind], mode, args.messages, args.max_messages, Path(tmp))
                    for mode in MODES
                ]
                _print_comparison(kind, figures)
    finally:
        rgw.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
