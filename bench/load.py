"""Sustained load: a steady rate of messages for a while, on SQLite and/or PostgreSQL.

    python -m bench.load --rate 200 --minutes 10 --db both

Runs `s3dest serve` against a local moto server (which tops out near 300 PUTs/s here),
sends `--rate` messages per second in batches of `--batch` for `--minutes`, then waits
for the queue to drain. Prints throughput, accept→delivered latency percentiles (p50,
p99, max) from the delivery records, and the server's RSS sampled every 10 s, so memory
growth over time is visible. Exit status 1 when a message was not delivered.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from tests.support.builders import create_destination
from tests.support.s3dest_server import S3destEnv, S3destProcess, serve

from s3dest.devtools.moto import start_moto_server


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def delivery_rows(url: str) -> list[tuple[str, float, float | None]]:
    """(state, accepted_at, delivered_at) of every message, read from s3dest's database."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            result = conn.execute(text("SELECT state, accepted_at, delivered_at FROM messages"))
            return [(str(r[0]), float(r[1]), r[2]) for r in result]
    finally:
        engine.dispose()


def report(
    kind: str,
    rate: int,
    minutes: float,
    batch: int,
    sent: int,
    send_seconds: float,
    total_seconds: float,
    rows: list[tuple[str, float, float | None]],
    samples: list[tuple[float, float, float]],
    accepted: int,
    cpu_used: float,
) -> bool:
    states: dict[str, int] = {}
    for state, _, _ in rows:
        states[state] = states.get(state, 0) + 1
    delivered = [(a, d) for st, a, d in rows if st == "delivered" and d is not None]
    latencies = sorted(d - a for a, d in delivered)
    print(f"\n== {kind}: {rate} msg/s for {minutes} min, batches of {batch}")
    print(f"sent {sent} in {send_seconds:.0f} s ({sent / send_seconds:.1f} msg/s offered)")
    print(
        f"202s {accepted}; in the database {len(rows)}: "
        + ", ".join(f"{k} {v}" for k, v in sorted(states.items()))
        + f"; queue drained {total_seconds - send_seconds:.1f} s after the last send"
    )
    if latencies:

        def pct(p: float) -> float:
            return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

        print(
            f"accept→delivered latency, all {len(latencies)} messages: p50 {pct(0.50):.0f} ms, "
            f"p90 {pct(0.90):.0f} ms, p99 {pct(0.99):.0f} ms, max {latencies[-1] * 1000:.0f} ms"
        )
        start = min(a for a, _ in delivered)
        per_minute: dict[int, int] = {}
        for _, d in delivered:
            minute = int((d - start) // 60)
            per_minute[minute] = per_minute.get(minute, 0) + 1
        print(
            "delivered per minute (msg/s): "
            + ", ".join(f"{m + 1}:{n / 60:.0f}" for m, n in sorted(per_minute.items()))
        )
    if samples:
        print("     t   RSS MB   server CPU, % of one core since the previous line")
        previous_t, previous_cpu = samples[0][0], samples[0][2]
        for i, (t, rss, cpu) in enumerate(samples):
            if i == 0 or i % 6 == 5 or i == len(samples) - 1:
                share = 100 * (cpu - previous_cpu) / max(t - previous_t, 1e-9) if i else 0.0
                print(f"  {t:4.0f}s {rss:7.0f}  {share:5.0f}" if i else f"  {t:4.0f}s {rss:7.0f}")
                previous_t, previous_cpu = t, cpu
        if len(samples) >= 8:
            quarter = len(samples) // 4
            first = statistics.mean(m for _, m, _ in samples[:quarter])
            last = statistics.mean(m for _, m, _ in samples[-quarter:])
            peak = max(m for _, m, _ in samples)
            print(
                f"RSS first quarter {first:.0f} MB, last quarter {last:.0f} MB, peak {peak:.0f} MB"
            )
    if delivered:
        print(
            f"server CPU {cpu_used:.1f} s from the first send until drained: "
            f"{1000 * cpu_used / len(delivered):.2f} ms per delivered message"
        )
    return states.get("delivered", 0) == accepted == len(rows)


def message(i: int) -> dict[str, Any]:
    return {
        "destination": "load",
        "action": "read",
        "provider": "hubspot",
        "objectName": "contacts",
        "installationId": "085353b1-07f1-4209-b471-7e028c0a68c8",
        "operationId": f"op-{i // 100}",
        "result": [{"fields": {"id": str(i), "firstname": "Maria", "note": "x" * 700}}],
    }


@contextlib.contextmanager
def database(kind: str) -> Iterator[str | None]:
    if kind == "sqlite":
        yield None
        return
    from tests.support.postgres import running_postgres

    with running_postgres() as pg:
        yield pg.create_database()


def run(kind: str, rate: int, minutes: float, batch: int) -> bool:
    s3 = start_moto_server()
    server: S3destProcess | None = None
    try:
        bucket = s3.create_bucket()
        with tempfile.TemporaryDirectory(prefix="s3dest-load-") as tmp, database(kind) as url:
            env = S3destEnv(
                data_dir=Path(tmp) / "data",
                database_url=url,
                extra={"S3DEST_LOG_LEVEL": "WARNING", "S3DEST_SECRET_KEY": ""},
            )
            _, key = env.create_project("load")
            server = serve(env, Path(tmp))
            assert server.proc is not None
            headers = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=server.url, headers=headers, timeout=60) as http:
                create_destination(http, s3, bucket, "load")
                samples: list[tuple[float, float, float]] = []  # (t, RSS MB, CPU s)
                stop = threading.Event()
                pid = server.proc.pid

                def sample() -> None:
                    start = time.monotonic()
                    while not stop.wait(10):
                        samples.append((time.monotonic() - start, rss_mb(pid), cpu_seconds(pid)))

                sampler = threading.Thread(target=sample, daemon=True)
                sampler.start()
                sent = 0
                cpu_at_start = cpu_seconds(pid)
                started = time.monotonic()
                deadline = started + minutes * 60
                interval = batch / rate
                next_send = started
                event_ids: list[str] = []
                while time.monotonic() < deadline:
                    body = {"messages": [message(sent + i) for i in range(batch)]}
                    response = http.post("/v1/messages", json=body)
                    response.raise_for_status()
                    event_ids.extend(a["eventId"] for a in response.json()["accepted"])
                    sent += batch
                    next_send += interval
                    delay = next_send - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                send_seconds = time.monotonic() - started
                # Drain.
                drain_deadline = time.monotonic() + 300
                pending = -1
                while time.monotonic() < drain_deadline:
                    counts = {
                        state: len(
                            http.get(
                                "/v1/deliveries", params={"state": state, "limit": 1000}
                            ).json()["deliveries"]
                        )
                        for state in ("queued", "delivering", "retrying", "held")
                    }
                    pending = sum(counts.values())
                    if pending == 0:
                        break
                    time.sleep(1)
                total_seconds = time.monotonic() - started
                cpu_used = cpu_seconds(pid) - cpu_at_start
                stop.set()
                # The API's view of a few messages (the report reads the database).
                spot = event_ids[:: max(1, len(event_ids) // 20)]
                states = [http.get(f"/v1/messages/{e}").json()["state"] for e in spot]
                print(f"GET /v1/messages/… of {len(spot)} messages: {sorted(set(states))}")
            server.terminate()
            rows = delivery_rows(env.database_url or f"sqlite:///{env.data_dir / 's3dest.db'}")
            return report(
                kind,
                rate,
                minutes,
                batch,
                sent,
                send_seconds,
                total_seconds,
                rows,
                samples,
                len(set(event_ids)),
                cpu_used,
            )
    finally:
        if server is not None:
            server.kill()  # no-op after a clean terminate; never leave it running
        s3.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    ok = all([run(kind, args.rate, args.minutes, args.batch) for kind in kinds])
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
