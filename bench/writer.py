"""Writer benchmark (issue 2): CPU per 1 KiB message, s3dest's writer vs a boto3 loop,
and peak RSS of `s3dest put` writing one 1 GiB message.

    .venv/bin/python -m bench.writer [--messages 5000] [--concurrency 32] [--skip-large]

Everything runs against a local moto server (IAM enforced) started here; moto is its own
process, so its CPU is not counted. CPU is process CPU time (time.process_time: all
threads, obstore's Rust runtime included), measured over the timed messages only, after a
warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import obstore
from bench._keepalive import start_keepalive_proxy
from bench._messages import ingest_message, write_big_message
from bench._processes import run_measured
from bench._report import Check, LoadSampler, heading, machine_line, print_checks
from tests.support.builders import data_of

from s3dest.devtools.moto import Credentials, S3Server, start_moto_server
from s3dest.keys import KeyTemplate
from s3dest.messages import EventMetadata, EventStamp, encode_body, new_stamp
from s3dest.s3.metadata import object_metadata
from s3dest.s3.writer import (
    ObjectRequest,
    S3Destination,
    _attributes,
    _cache,
    put_object,
)

PROJECT_ID = "0199e0a2-6c1e-7c3a-9d1e-5f0b2a7c4d11"
DESTINATION_ID = "0199e0a2-6c1e-7c3a-9d1e-5f0b2a7c4d12"

TARGET_MS = 0.25
TARGET_RATIO = 1 / 8
TARGET_RSS_MB = 250


Stamped = tuple[dict[str, Any], EventStamp]


def _messages(n: int) -> list[Stamped]:
    """n distinct ~1 KiB messages as ingest leaves them: the `data` object and the stamp
    (event-id, event time) given at acceptance, which every write attempt reuses."""
    return [
        (data_of(ingest_message(i, destination="bench"), project_id=PROJECT_ID), new_stamp())
        for i in range(n)
    ]


def _metadata(data: dict[str, Any], event_id: str, event_time_ns: int) -> EventMetadata:
    return EventMetadata.of(
        data,
        project_id=PROJECT_ID,
        destination_id=DESTINATION_ID,
        event_id=event_id,
        event_time_ns=event_time_ns,
        connection_id="",
        topic="",
    )


def _request(template: KeyTemplate, message: Stamped, prefix: str) -> ObjectRequest:
    """Everything the writer does per message before the PUT: render, encode, metadata."""
    data, stamp = message
    meta = _metadata(data, stamp.event_id, stamp.event_time_ns)
    key = prefix + template.render_message(meta, stamp.event_time_ns, data)
    return ObjectRequest(
        key=key, body=encode_body(data), metadata=object_metadata(meta), event_id=stamp.event_id
    )


def _run_threads(
    dest: S3Destination, template: KeyTemplate, batch: list[Stamped], concurrency: int
) -> None:
    """`concurrency` threads each writing with the blocking writer, as the delivery
    workers' sender threads do."""
    it = iter(batch)
    lock = threading.Lock()

    def lane() -> None:
        while True:
            with lock:
                message = next(it, None)
            if message is None:
                return
            put_object(dest, _request(template, message, "threads/"))

    lanes = [threading.Thread(target=lane) for _ in range(concurrency)]
    for t in lanes:
        t.start()
    for t in lanes:
        t.join()


def _timed(fn: Any, n: int) -> tuple[float, float]:
    """(CPU ms per message, wall seconds) of fn()."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    fn()
    return (time.process_time() - cpu0) * 1000 / n, time.perf_counter() - wall0


@dataclass
class Figures:
    label: str
    threads_ms: float
    sync_ms: float
    prep_ms: float
    boto_ms: float

    def checks(self) -> list[Check]:
        worst = max(self.threads_ms, self.sync_ms)
        return [
            Check(
                f"writer ≤ {TARGET_MS} ms CPU/message ({self.label})",
                worst <= TARGET_MS,
                f"threads {self.threads_ms:.3f} ms, sync {self.sync_ms:.3f} ms",
            ),
            Check(
                f"writer ≤ 1/8 of boto3's CPU ({self.label})",
                worst <= self.boto_ms * TARGET_RATIO,
                f"threads 1/{self.boto_ms / self.threads_ms:.1f}, "
                f"sync 1/{self.boto_ms / self.sync_ms:.1f} (boto3 {self.boto_ms:.3f} ms)",
            ),
        ]


def _boto3_client(endpoint: str, region: str, creds: Credentials) -> Any:
    import boto3.session
    import botocore.config

    config = botocore.config.Config(
        s3={"addressing_style": "path"},
        retries={"total_max_attempts": 3, "mode": "standard"},
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=creds.access_key_id,
        aws_secret_access_key=creds.secret_access_key,
        config=config,
    )


def bench_small(
    s3: S3Server, endpoint: str, label: str, n: int, concurrency: int, warmup: int
) -> Figures:
    heading(f"CPU per 1 KiB message, {label}")
    bucket = s3.create_bucket()
    creds = s3.putonly_user(bucket)
    dest = S3Destination(
        bucket=bucket,
        region=s3.region,
        access_key_id=creds.access_key_id,
        secret_access_key=creds.secret_access_key,
        endpoint_url=endpoint,
    )
    template = KeyTemplate(None)  # the default key template
    messages = _messages(n + warmup)
    body_sizes = [len(encode_body(d)) for d, _ in messages]
    print(
        f"  {n} messages (+{warmup} warm-up), body {min(body_sizes)}–{max(body_sizes)} bytes, "
        f"endpoint {endpoint}, bucket {bucket} (put-only IAM user), default key template"
    )
    load = LoadSampler()
    load.sample()

    # (a1) writer on `concurrency` threads: the path the delivery workers use.
    _run_threads(dest, template, messages[:warmup], concurrency)
    threads_ms, threads_wall = _timed(
        lambda: _run_threads(dest, template, messages[warmup:], concurrency), n
    )
    load.sample()

    # (a2) sync writer, one at a time.
    def sync_loop(batch: list[Stamped]) -> None:
        for message in batch:
            put_object(dest, _request(template, message, "sync/"))

    sync_loop(messages[:warmup])
    sync_ms, sync_wall = _timed(lambda: sync_loop(messages[warmup:]), n)
    load.sample()

    # (a4) obstore alone, no s3dest code: the same store, body and headers, sync and async.
    # This is the floor the writer sits on at this endpoint.
    store = _cache.get(dest).store
    raw_requests = [_request(template, m, "raw/") for m in messages]
    attributes = [_attributes(dest, r) for r in raw_requests]

    def raw_loop(start: int, stop: int) -> None:
        for i in range(start, stop):
            r = raw_requests[i]
            obstore.put(store, r.key, r.body, attributes=attributes[i], use_multipart=False)

    async def raw_async(start: int, stop: int) -> None:
        it = iter(range(start, stop))

        async def lane() -> None:
            for i in it:
                r = raw_requests[i]
                await obstore.put_async(
                    store, r.key + "a", r.body, attributes=attributes[i], use_multipart=False
                )

        await asyncio.gather(*(lane() for _ in range(concurrency)))

    raw_loop(0, warmup)
    raw_sync_ms, raw_sync_wall = _timed(lambda: raw_loop(warmup, warmup + n), n)
    raw_async_ms, raw_async_wall = _timed(lambda: asyncio.run(raw_async(warmup, warmup + n)), n)
    load.sample()

    # (a3) the per-message work without the PUT (render + encode + metadata), for reference.
    prep_ms, _ = _timed(lambda: [_request(template, d, "x/") for d in messages[warmup:]], n)

    # (b) plain boto3 put_object loop, same bodies, same put-only user, same endpoint.
    client = _boto3_client(endpoint, s3.region, creds)
    bodies = [encode_body(d) for d, _ in messages]

    def boto_loop(start: int, stop: int) -> None:
        for i in range(start, stop):
            stamp = messages[i][1]
            client.put_object(
                Bucket=bucket,
                Key=f"boto3/{stamp.event_id}.json",
                Body=bodies[i],
                ContentType="application/json",
            )

    boto_loop(0, warmup)
    boto_ms, boto_wall = _timed(lambda: boto_loop(warmup, warmup + n), n)
    load.sample()

    written = len(s3.client().list_objects_v2(Bucket=bucket, MaxKeys=1000).get("Contents", []))
    assert written > 0, "nothing reached the bucket"
    rows = [
        (f"s3dest writer, {concurrency} threads", threads_ms, threads_wall),
        ("s3dest writer, sync put_object", sync_ms, sync_wall),
        ("  of which render + encode + metadata", prep_ms, None),
        (f"obstore alone, async ({concurrency} in flight)", raw_async_ms, raw_async_wall),
        ("obstore alone, sync put", raw_sync_ms, raw_sync_wall),
        ("boto3 put_object loop", boto_ms, boto_wall),
    ]
    for name, ms, wall in rows:
        rate = f"{n / wall:8.0f} msg/s" if wall else ""
        print(f"  {name:<44} {ms:7.3f} ms CPU/msg  {rate}")
    print(
        f"  ratio threaded writer / boto3: {threads_ms / boto_ms:.3f} "
        f"(1/{boto_ms / threads_ms:.1f})"
    )
    print(f"  ratio sync writer  / boto3: {sync_ms / boto_ms:.3f} (1/{boto_ms / sync_ms:.1f})")
    print(f"  {load.summary()}")
    return Figures(label, threads_ms, sync_ms, prep_ms, boto_ms)


def bench_large(s3: S3Server, size: int, workdir: Path) -> list[Check]:
    heading(f"one {size / 2**30:.2f} GiB message through `s3dest put`")
    bucket = s3.create_bucket()
    creds = s3.putonly_user(bucket)
    path = workdir / "big-message.json"
    started = time.perf_counter()
    written = write_big_message(path, size, wrapped=True)
    print(f"  wrote {path} ({written / 2**20:.0f} MiB) in {time.perf_counter() - started:.1f} s")
    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID=creds.access_key_id,
        AWS_SECRET_ACCESS_KEY=creds.secret_access_key,
        TMPDIR=str(workdir),
    )
    env.pop("AWS_SESSION_TOKEN", None)
    argv = [
        sys.executable,
        "-m",
        "s3dest.cli",
        "put",
        str(path),
        "--bucket",
        bucket,
        "--region",
        s3.region,
        "--endpoint-url",
        s3.endpoint,
    ]
    load = LoadSampler()
    load.sample()
    code, wall, cpu, peak, output = run_measured(argv, env=env)
    load.sample()
    path.unlink()
    if code != 0:
        print("  " + output.strip().replace("\n", "\n  "))
        print(f"  wall {wall:.1f} s, CPU {cpu:.1f} s, peak RSS (ru_maxrss) {peak:.0f} MiB")
        return [
            Check(
                f"peak RSS of `s3dest put` < {TARGET_RSS_MB} MB",
                False,
                f"`s3dest put` exited {code} (peak RSS until then {peak * 1.048576:.0f} MB)",
            )
        ]
    print("  " + output.strip().replace("\n", "\n  "))
    admin = s3.client()
    listing = admin.list_objects_v2(Bucket=bucket).get("Contents", [])
    for obj in listing:
        print(f"  in bucket: {obj['Key']} ({obj['Size'] / 2**20:.0f} MiB)")
        admin.delete_object(Bucket=bucket, Key=obj["Key"])  # moto keeps it in memory
    peak_mb = peak * 1.048576
    print(f"  wall {wall:.1f} s, CPU {cpu:.1f} s, peak RSS (ru_maxrss) {peak:.0f} MiB")
    print(f"  {load.summary()}")
    return [
        Check(
            f"peak RSS of `s3dest put` < {TARGET_RSS_MB} MB",
            peak_mb < TARGET_RSS_MB and bool(listing),
            f"{peak_mb:.0f} MB ({peak:.0f} MiB) for {written / 2**30:.2f} GiB",
        )
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--large-bytes", type=int, default=2**30)
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--skip-small", action="store_true")
    parser.add_argument(
        "--no-proxy",
        action="store_true",
        help="skip the second pass through a keep-alive proxy (moto closes every connection)",
    )
    args = parser.parse_args(argv)

    print(f"bench.writer — {machine_line()}")
    s3 = start_moto_server()
    print(f"moto server {s3.endpoint} (pid {s3.process.pid if s3.process else '?'})")
    checks: list[Check] = []
    try:
        if not args.skip_small:
            small = (args.messages, args.concurrency, args.warmup)
            direct = bench_small(s3, s3.endpoint, "moto direct", *small)
            checks += direct.checks()
            if not args.no_proxy:
                proxy = start_keepalive_proxy(s3.endpoint)
                try:
                    kept = bench_small(s3, proxy.endpoint, "keep-alive proxy → moto", *small)
                finally:
                    proxy.stop()
                checks += kept.checks()
        if not args.skip_large:
            with tempfile.TemporaryDirectory(prefix="s3dest-bench-") as tmp:
                checks += bench_large(s3, args.large_bytes, Path(tmp))
    finally:
        s3.stop()
    print_checks(checks)
    print(f"\n{machine_line()}")
    return 0 if all(c.ok for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
