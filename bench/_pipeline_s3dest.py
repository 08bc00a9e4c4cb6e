"""bench.pipeline's s3dest measurement: N messages over HTTP through one `s3dest serve`,
its CPU per message by thread kind, latencies, an optional py-spy profile by category,
the idle cost after the run, and the comparison of this checkout with a baseline.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench._databases import Database
from bench._processes import (
    peak_rss_mib,
    proc_cpu_seconds,
)
from bench._profiles import categorize_collapsed, summarize_collapsed
from bench._report import LoadSampler, heading, percentile
from bench._s3_server import ConnectionCensus, S3Server
from bench._server_run import ServerRun, _batches, _send_all, _wait_delivered, start_s3dest

# Where s3dest's Python CPU goes, by the first matching frame of each sampled stack.
PROFILE_CATEGORIES: list[tuple[str, list[str]]] = [
    ("logging (one JSON line per delivery)", ["(logging/", "JsonFormatter."]),
    ("metrics (prometheus_client)", ["(prometheus_client/"]),
    ("ingest: validate + normalise (pydantic, providers)", ["prepare (s3dest/ingest/normalise.py"]),
    ("ingest: routing view + INSERT + commit", ["Ingestor.ingest (s3dest/ingest/service.py"]),
    (
        "ingest: HTTP, body read, JSON parse, response (uvicorn/FastAPI)",
        ["(s3dest/api/", "(fastapi/", "(starlette/", "(uvicorn/", "(anyio/"],
    ),
    ("worker: claim (UPDATE … RETURNING + commit)", ["claim (s3dest/store/queue/"]),
    ("worker: destination version check per claim", ["refresh (s3dest/delivery/dispatch.py"]),
    (
        "worker: record outcomes (finish + commit)",
        ["finish (s3dest/store/queue/", "flush (s3dest/delivery/outcomes.py"],
    ),
    ("worker: lease keeper", ["keep (s3dest/delivery/leases.py", "extend_leases"]),
    ("worker: reaper + probes", ["reap_expired_leases", "release_probes"]),
    ("worker: key render + metadata + body decode", ["build_request (s3dest/"]),
    (
        "worker: obstore put (HTTP, signing; GIL released while waiting)",
        ["send_put (s3dest/", "put_object (s3dest/"],
    ),
    ("worker: rest of _deliver", ["_deliver (s3dest/"]),
    (
        "coordinator wait + thread hand-offs",
        ["(s3dest/delivery/coordinator.py", "(s3dest/delivery/shared.py", "threading", "submit"],
    ),
]


WARMUP = 200  # messages sent and delivered before the measurement starts


@dataclass
class PipelineFigures:
    db: str
    messages: int
    wall: float
    cpu: float
    db_cpu: float
    latencies: list[float]
    post_latencies: list[float]
    ingest_done: float
    threads: dict[str, tuple[float, float]] = field(default_factory=dict)
    peak_rss: float = 0.0
    db_commits: int = 0

    @property
    def rate(self) -> float:
        return self.messages / self.wall

    @property
    def cpu_ms(self) -> float:
        return self.cpu * 1000 / self.messages


def _thread_cpu(pid: int) -> dict[str, tuple[float, float]]:
    """(user, system) CPU seconds by thread kind, from the names s3dest gives its threads
    (s3dest.delivery.osthread): main (uvicorn loop), sender threads, worker loop, tokio, other."""
    out: dict[str, tuple[float, float]] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as fh:
                raw = fh.read()
        except OSError:
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        user, system = int(fields[11]) / tick, int(fields[12]) / tick
        if int(tid) == pid:
            kind = "main thread (uvicorn event loop: HTTP, FastAPI)"
        elif name.startswith("s3dest-put"):
            kind = "sender threads (PUT: obstore HTTP + signing, render, outcome, log line)"
        elif name.startswith("s3dest-worker"):
            kind = "worker loop (claims, leases, outcome flushes)"
        elif name.startswith("tokio"):
            kind = "tokio threads (obstore: socket I/O)"
        else:
            kind = "other threads (ingest handlers, database calls)"
        u, s_ = out.get(kind, (0.0, 0.0))
        out[kind] = (u + user, s_ + system)
    return out


@dataclass
class Code:
    """Which s3dest the server runs: this checkout's, or another checkout's `src/` (a
    baseline), put first on the server's PYTHONPATH so both run beside the same S3 server,
    database and load in one run of this script."""

    label: str
    src: Path | None = None
    runs: int = 0

    def env(self) -> dict[str, str]:
        return {"PYTHONPATH": str(self.src)} if self.src is not None else {}


def bench_s3dest(
    s3: S3Server,
    endpoint: str,
    db: Database,
    n: int,
    batch: int,
    senders: int,
    workdir: Path,
    profile_dir: Path | None,
    code: Code | None = None,
) -> PipelineFigures:
    code = code or Code("s3dest")
    heading(
        f"{code.label} serve on {db.kind}: {n} messages of ~1 KiB over HTTP, batches of {batch}"
    )
    code.runs += 1
    run = start_s3dest(
        s3, endpoint, db, workdir, f"{code.label}-{db.kind}-{code.runs}", **code.env()
    )
    profiler: subprocess.Popen[bytes] | None = None
    try:
        warm = _batches(WARMUP, batch, run.destination, 10_000_000)
        bodies = _batches(n, batch, run.destination, 0)
        print(f"  s3dest pid {run.pid}, bucket {run.bucket}, {senders} sender threads")
        load = LoadSampler()
        _send_all(run, warm, senders)
        _wait_delivered(db, run, WARMUP, load, 120)
        time.sleep(1.0)  # let the last outcomes flush; the worker idles (polls) from here on

        if profile_dir is not None:
            profile_dir.mkdir(parents=True, exist_ok=True)
            raw = profile_dir / f"s3dest-{db.kind}.txt"
            profiler = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "--pid",
                    str(run.pid),
                    "--rate",
                    "100",
                    "--nonblocking",
                    "--gil",  # only the thread holding the GIL: Python CPU, not waits
                    "--format",
                    "raw",
                    "-o",
                    str(raw),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)
        threads0 = _thread_cpu(run.pid)
        commits0 = db.commits()
        cpu0, db_cpu0 = proc_cpu_seconds(run.pid), db.server_cpu_seconds()
        wall0, since = time.perf_counter(), time.time()
        load.sample()
        with ConnectionCensus(endpoint) as census:
            timings, errors = _send_all(run, bodies, senders)
            ingest_done = time.perf_counter() - wall0
            counts = _wait_delivered(db, run, WARMUP + n, load, 3600)
            wall = time.perf_counter() - wall0
        cpu, db_cpu = proc_cpu_seconds(run.pid) - cpu0, db.server_cpu_seconds() - db_cpu0
        threads1 = _thread_cpu(run.pid)
        if db.pg is not None:
            time.sleep(1.5)  # backends publish their statistics about once a second
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(60)
        figures = PipelineFigures(
            db=db.kind,
            messages=n,
            wall=wall,
            cpu=cpu,
            db_cpu=db_cpu,
            latencies=db.latencies(run.env, since),
            post_latencies=timings,
            ingest_done=ingest_done,
            threads={
                k: (u - threads0.get(k, (0.0, 0.0))[0], st - threads0.get(k, (0.0, 0.0))[1])
                for k, (u, st) in threads1.items()
            },
            db_commits=db.commits() - commits0,
            peak_rss=peak_rss_mib(run.pid),
        )
        if errors:
            print(f"  {len(errors)} ingest requests were retried, e.g. {errors[0]}")
        _verify(s3, run, n + WARMUP, counts)
        _print_pipeline(figures, load)
        print(f"  {census.summary(n)}")
        _print_idle_cpu(run.pid)
        if profile_dir is not None:
            raw = profile_dir / f"s3dest-{db.kind}.txt"
            if raw.exists():
                python_ms = (
                    sum(
                        u + st
                        for k, (u, st) in figures.threads.items()
                        if not k.startswith("tokio")
                    )
                    * 1000
                    / figures.messages
                )
                print(f"  py-spy --gil profile (collapsed stacks): {raw}")
                print(f"  Python CPU by category (of {python_ms:.3f} ms/msg in Python threads):")
                for name, share in categorize_collapsed(raw, PROFILE_CATEGORIES):
                    print(f"    {100 * share:5.1f}%  ~{share * python_ms:.3f} ms/msg  {name}")
                print(summarize_collapsed(raw, indent="    "))
        return figures
    finally:
        if profiler is not None and profiler.poll() is None:
            profiler.kill()
        run.stop()


IDLE_SECONDS = 10.0


def _print_idle_cpu(pid: int) -> None:
    """What the server costs with nothing to do (after the run, outside its figures): the
    worker's queue polls, probes and lease keeping."""
    time.sleep(2.0)  # the idle poll has backed off by now
    cpu0, wall0 = proc_cpu_seconds(pid), time.perf_counter()
    time.sleep(IDLE_SECONDS)
    share = (proc_cpu_seconds(pid) - cpu0) / (time.perf_counter() - wall0)
    print(f"  idle: {100 * share:.2f} % of a core over {IDLE_SECONDS:.0f} s with nothing to do")


def _verify(s3: S3Server, run: ServerRun, expected: int, counts: dict[str, int]) -> None:
    """After the measurement: the objects are in the bucket; a record says delivered + key."""
    admin = s3.client()
    keys = 0
    for page in admin.get_paginator("list_objects_v2").paginate(Bucket=run.bucket):
        keys += len(page.get("Contents", []))
    with run.http() as http:
        sample = http.get("/v1/deliveries", params={"state": "delivered", "limit": 5}).json()
        record = sample["deliveries"][0]
        one = http.get(f"/v1/messages/{record['eventId']}").json()
    admin.head_object(Bucket=run.bucket, Key=one["key"])
    print(
        f"  verified: {keys} objects in the bucket (expected {expected}), states {counts}; "
        f"GET /v1/messages/{one['eventId'][:8]}… → {one['state']}, key {one['key']}"
    )
    if keys != expected:
        raise RuntimeError(f"{keys} objects in the bucket, expected {expected}")


def _print_pipeline(f: PipelineFigures, load: LoadSampler) -> None:
    lat = f.latencies
    print(
        f"  throughput: {f.rate:.0f} messages/s ({f.messages} in {f.wall:.1f} s; "
        f"all {f.messages} accepted after {f.ingest_done:.1f} s, "
        f"{f.messages / f.ingest_done:.0f} msg/s ingest)"
    )
    print(
        f"  s3dest CPU: {f.cpu:.2f} s = {f.cpu_ms:.3f} ms per delivered message "
        f"(process {f.db}, all threads)"
    )
    if f.db == "postgres":
        print(
            f"  PostgreSQL server CPU (separate process, not in the figure above): "
            f"{f.db_cpu:.2f} s = {f.db_cpu * 1000 / f.messages:.3f} ms/message; "
            f"s3dest + PostgreSQL = {(f.cpu + f.db_cpu) * 1000 / f.messages:.3f} ms/message"
        )
    for kind, (user, system) in sorted(f.threads.items(), key=lambda kv: -sum(kv[1])):
        if user + system > 0:
            print(
                f"    {kind:<52} {(user + system) * 1000 / f.messages:.3f} ms/msg "
                f"(user {user * 1000 / f.messages:.3f}, system {system * 1000 / f.messages:.3f})"
            )
    if f.db_commits:
        print(
            f"  PostgreSQL commits: {f.db_commits} = {f.db_commits / f.messages:.2f} per message "
            "(pg_stat_database.xact_commit; includes this benchmark's few polling queries)"
        )
    print(
        f"  accept→delivered latency: p50 {percentile(lat, 50) * 1000:.0f} ms, "
        f"p99 {percentile(lat, 99) * 1000:.0f} ms, max {max(lat) * 1000:.0f} ms "
        f"({len(lat)} records)"
    )
    print(
        f"  POST /v1/messages (batch of 100) → 202: p50 "
        f"{percentile(f.post_latencies, 50) * 1000:.0f} ms, "
        f"p99 {percentile(f.post_latencies, 99) * 1000:.0f} ms"
    )
    print(f"  s3dest peak RSS {f.peak_rss:.0f} MiB; {load.summary()}")


def _print_comparison(compared: dict[str, dict[str, list[PipelineFigures]]], base: Path) -> None:
    """Baseline against this checkout: every run's CPU per message, then the medians."""
    print(f"  baseline = {base}; CPU ms per delivered message, each run (PostgreSQL: + server)")
    for kind, runs in compared.items():
        medians: dict[str, float] = {}
        for label, figures in runs.items():
            own = [f.cpu_ms for f in figures]
            total = [(f.cpu + f.db_cpu) * 1000 / f.messages for f in figures]
            shown = total if kind == "postgres" else own
            medians[label] = statistics.median(shown)
            print(
                f"    {label + ' on ' + kind:<26} runs "
                + ", ".join(f"{v:.3f}" for v in shown)
                + f"; median {medians[label]:.3f}"
                + (
                    f" (s3dest process alone {statistics.median(own):.3f})"
                    if kind == "postgres"
                    else ""
                )
            )
        ratio = medians["s3dest"] / medians["baseline"]
        print(f"    {'  this checkout / baseline':<26} {ratio:.3f}x on {kind}")
