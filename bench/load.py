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
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from tests.support.s3dest_server import S3destEnv, S3destProcess, serve

from s3dest.devtools.moto import start_moto_server


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


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
    try:
        bucket = s3.create_bucket()
        creds = s3.putonly_user(bucket)
        with tempfile.TemporaryDirectory(prefix="s3dest-load-") as tmp, database(kind) as url:
            env = S3destEnv(
                data_dir=Path(tmp) / "data",
                database_url=url,
                extra={"S3DEST_LOG_LEVEL": "WARNING", "S3DEST_SECRET_KEY": ""},
            )
            _, key = env.create_project("load")
            server: S3destProcess = serve(env, Path(tmp))
            assert server.proc is not None
            headers = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=server.url, headers=headers, timeout=60) as http:
                http.post(
                    "/v1/destinations",
                    json={
                        "name": "load",
                        "bucket": bucket,
                        "region": s3.region,
                        "accessKeyId": creds.access_key_id,
                        "secretAccessKey": creds.secret_access_key,
                        "endpointUrl": s3.endpoint,
                    },
                ).raise_for_status()
                samples: list[tuple[float, float]] = []
                stop = threading.Event()

                def sample() -> None:
                    start = time.monotonic()
                    while not stop.wait(10):
                        samples.append((time.monotonic() - start, rss_mb(server.proc.pid)))  # type: ignore[union-attr]

                sampler = threading.Thread(target=sample, daemon=True)
                sampler.start()
                sent = 0
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
                stop.set()
                latencies = []
                for event_id in event_ids[:: max(1, len(event_ids) // 2000)]:
                    record = http.get(f"/v1/messages/{event_id}").json()
                    if record["state"] == "delivered":
                        latencies.append(record["deliveredAt"] - record["acceptedAt"])
                parked = len(
                    http.get("/v1/deliveries", params={"state": "parked"}).json()["deliveries"]
                )
            server.terminate()
            latencies.sort()

            def pct(p: float) -> float:
                return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

            print(f"\n== {kind}: {rate} msg/s for {minutes} min, batches of {batch}")
            print(f"sent {sent} in {send_seconds:.0f} s ({sent / send_seconds:.0f} msg/s offered)")
            print(f"all delivered after {total_seconds:.0f} s; pending={pending} parked={parked}")
            if latencies:
                print(
                    f"accept→delivered latency (sample of {len(latencies)}): "
                    f"p50 {pct(0.50):.0f} ms, p99 {pct(0.99):.0f} ms, "
                    f"max {latencies[-1] * 1000:.0f} ms, mean "
                    f"{statistics.mean(latencies) * 1000:.0f} ms"
                )
            print("server RSS over time: " + ", ".join(f"{t:.0f}s={m:.0f}MB" for t, m in samples))
            if len(samples) >= 4:
                first = statistics.mean(m for _, m in samples[: len(samples) // 4])
                last = statistics.mean(m for _, m in samples[-(len(samples) // 4) :])
                print(f"RSS first quarter {first:.0f} MB, last quarter {last:.0f} MB")
            return pending == 0 and parked == 0
    finally:
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
