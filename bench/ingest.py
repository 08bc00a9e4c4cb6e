"""Ingest CPU: server CPU per message for `POST /v1/messages`, nothing else running.

    .venv/bin/python -m bench.ingest [--messages 20000] [--batch 100] [--senders 3]
                                     [--runs 3] [--profile DIR]

`s3dest serve --no-workers` (API only: no delivery, so the only CPU is ingest: HTTP,
JSON parse, validation and normalisation, INSERT + commit) on SQLite, a destination that
is never written to. `--messages` messages of ~1 KiB are posted in batches of `--batch`
from `--senders` threads; printed: the server's CPU (utime + stime, all threads, from
/proc/PID/stat) per message over the measured window, after a warm-up. Each run uses a
fresh server and database; the median of the runs is printed last.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
from bench._messages import ingest_message
from bench._processes import proc_cpu_seconds
from bench._profiles import summarize_collapsed
from bench._report import LoadSampler, heading, machine_line
from bench._server_run import ServerRun, _send_all
from tests.support.s3dest_server import S3destEnv, serve

WARMUP = 1000


def _bodies(n: int, batch: int, start: int) -> list[bytes]:
    messages = [ingest_message(start + i, destination="bench") for i in range(n)]
    return [
        orjson.dumps({"messages": messages[i : i + batch]}) for i in range(0, len(messages), batch)
    ]


def _start(workdir: Path) -> ServerRun:
    env = S3destEnv(data_dir=workdir / "data", extra={"S3DEST_SECRET_KEY": ""})
    env.data_dir.mkdir(parents=True, exist_ok=True)
    project_id, api_key = env.create_project("bench")
    process = serve(env, workdir, "--no-workers")
    run = ServerRun(env, process, api_key, "bench", "bench-bucket", project_id)
    try:
        with run.http() as http:
            response = http.post(
                "/v1/destinations",
                json={
                    "name": "bench",
                    "bucket": "bench-bucket",
                    "region": "us-east-1",
                    "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
                    "secretAccessKey": "secret-access-key-example",
                    "endpointUrl": "http://127.0.0.1:9",
                },
            )
            if response.status_code != 201:
                raise RuntimeError(f"cannot create the destination: {response.text}")
    except BaseException:
        run.stop()
        raise
    return run


def one_run(args: argparse.Namespace, bodies: list[bytes], warm: list[bytes], n: int) -> float:
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        run = _start(Path(tmp))
        try:
            _timings, errors = _send_all(run, warm, args.senders)
            if errors:
                raise RuntimeError(f"warm-up errors: {errors[:3]}")
            load = LoadSampler()
            load.sample()
            spy = None
            if args.profile:
                out = Path(args.profile) / f"ingest-{int(time.time())}.txt"
                spy = subprocess.Popen(
                    [
                        str(Path(sys.executable).parent / "py-spy"),
                        "record",
                        "--gil",
                        "--format",
                        "raw",
                        "--rate",
                        "250",
                        "-p",
                        str(run.pid),
                        "-o",
                        str(out),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                time.sleep(1.0)
            cpu0, wall0 = proc_cpu_seconds(run.pid), time.perf_counter()
            _timings, errors = _send_all(run, bodies, args.senders)
            cpu1, wall1 = proc_cpu_seconds(run.pid), time.perf_counter()
            load.sample()
            if spy is not None:
                spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
                spy.wait(30)
            if errors:
                raise RuntimeError(f"errors: {errors[:3]}")
            ms = (cpu1 - cpu0) * 1000 / n
            print(
                f"  {n} messages in {wall1 - wall0:.2f} s ({n / (wall1 - wall0):.0f} msg/s); "
                f"server CPU {cpu1 - cpu0:.2f} s = {ms:.4f} ms/msg; {load.summary()}",
                flush=True,
            )
            if spy is not None and out.exists():
                print(summarize_collapsed(out, indent="    "))
            return ms
        finally:
            run.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--senders", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", default=None, help="directory for py-spy raw profiles")
    args = parser.parse_args()
    heading(f"ingest CPU: {args.messages} x ~1 KiB, batches of {args.batch}, SQLite")
    print(machine_line())
    n = args.messages - args.messages % args.batch
    bodies = _bodies(n, args.batch, WARMUP)
    warm = _bodies(WARMUP, args.batch, 0)
    figures = [one_run(args, bodies, warm, n) for _ in range(args.runs)]
    print(
        f"median server CPU per message: {statistics.median(figures):.4f} ms "
        f"({len(figures)} runs: {', '.join(f'{f:.4f}' for f in figures)})"
    )


if __name__ == "__main__":
    main()
