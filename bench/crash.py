"""Crash test at length: kill -9 `s3dest serve` at random moments while it ingests and
delivers, restart it, repeat; then check that every message that got a 202 is in the bucket.

    python -m bench.crash [--cycles 20] [--db sqlite|postgres|both] [--batch 50] [--seed N]
                          [--rate MSGS_PER_S]

Starts a moto server (IAM enforced, bucket versioning on so that a message written twice
shows as two versions of its key) and `s3dest serve`. A sender thread posts batches all the
time; the main thread kills the server (SIGKILL) after a random 0.3–3 s, waits a random
0–1 s, starts it again, and so on. Requests cut off by a kill get no 202: their messages
may or may not have been accepted (that is allowed: they were never promised). At the end,
once nothing is queued or in flight, it prints:

    cycles, messages (that got a 202), delivered, missing (must be 0), duplicates (PUTs
    beyond the first for a key: at-least-once allows them), unacknowledged-but-delivered,
    and what each kill cut off: messages accepted but not delivered, and messages leased or
    `delivering`, read from s3dest's database while the process was dead

"Delivered" and "missing" come from the bucket, not from s3dest: an acknowledged message
counts as delivered when an object whose key holds its event id is in the bucket and the
object's body is that message (its record id, sent by this script).

Exit status 1 when a message that got a 202 is missing. The integration suite runs the same
function with a few cycles (tests/integration/test_crash.py).
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from tests.support.builders import create_destination
from tests.support.polling import wait_queue_empty
from tests.support.s3dest_server import S3destEnv, serve
from tests.support.store_counts import StateCounts, state_counts

from s3dest.devtools.moto import S3Server, start_moto_server

# Short leases: a killed process's claimed messages come back within seconds.
CRASH_ENV = {"S3DEST_LEASE_SECONDS": "5", "S3DEST_SECRET_KEY": ""}


@dataclass
class CrashFigures:
    cycles: int = 0
    requests_ok: int = 0
    requests_failed: int = 0
    acked: list[str] = field(default_factory=list)  # event ids that got a 202
    sent_ids: dict[str, str] = field(default_factory=dict)  # event id -> the record id it sent
    at_kill: list[StateCounts] = field(default_factory=list)  # the database after each kill
    delivered: int = 0
    missing: list[str] = field(default_factory=list)
    duplicates: int = 0
    objects: int = 0
    unacked_delivered: int = 0
    seconds: float = 0.0

    def line(self, label: str) -> str:
        return (
            f"{label}: cycles={self.cycles} messages={len(self.acked)} "
            f"delivered={self.delivered} missing={len(self.missing)} "
            f"duplicates={self.duplicates} unacknowledged-but-delivered="
            f"{self.unacked_delivered} requests={self.requests_ok} ok/"
            f"{self.requests_failed} cut off, {self.seconds:.1f}s; at each kill "
            f"undelivered={[c.undelivered for c in self.at_kill]} "
            f"in-flight={[c.in_flight for c in self.at_kill]}"
        )


def _message(n: int) -> dict[str, Any]:
    return {
        "destination": "crash",
        "action": "read",
        "provider": "salesforce",
        "installationId": "inst-crash",
        "objectName": "account",
        "result": [{"fields": {"id": str(n), "name": f"Account {n}"}}],
    }


class _Sender(threading.Thread):
    """Posts batches (without pause, or at `rate` messages/s); remembers the event ids of
    every 202."""

    def __init__(
        self, url: str, api_key: str, batch: int, figures: CrashFigures, rate: float = 0
    ) -> None:
        super().__init__(name="crash-sender", daemon=True)
        self.url, self.api_key, self.batch, self.figures = url, api_key, batch, figures
        self.interval = batch / rate if rate > 0 else 0.0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.n = 0

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.api_key}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=30) as http:
            next_send = time.monotonic()
            while not self.stop.is_set():
                if self.interval:
                    next_send += self.interval
                    self.stop.wait(max(0.0, next_send - time.monotonic()))
                first = self.n
                body = {"messages": [_message(first + i) for i in range(self.batch)]}
                self.n += self.batch
                try:
                    response = http.post("/v1/messages", json=body)
                except httpx.HTTPError:
                    with self.lock:
                        self.figures.requests_failed += 1
                    time.sleep(0.05)
                    continue
                with self.lock:
                    if response.status_code == 202:
                        self.figures.requests_ok += 1
                        accepted = [a["eventId"] for a in response.json()["accepted"]]
                        self.figures.acked += accepted
                        # `accepted` is in the order of the batch
                        for i, event_id in enumerate(accepted):
                            self.figures.sent_ids[event_id] = str(first + i)
                    else:  # 503 while the database recovers, say: not promised
                        self.figures.requests_failed += 1


def _wait_for_acceptance(sender: _Sender, acked_before: int, timeout: float) -> None:
    """Until the server has answered 202 to at least one more batch (or `timeout` passed:
    the kill then happens anyway, and the cut-off counts say that it met nothing)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sender.lock:
            if len(sender.figures.acked) > acked_before:
                return
        time.sleep(0.05)


def _wait_for_pending(env: S3destEnv, timeout: float) -> None:
    """Until the database holds accepted messages not yet delivered (or `timeout`): on a
    machine where S3 absorbs the load as fast as it comes, the random moment alone often
    found the queue empty, and a kill then cut nothing off (a CI run: nothing undelivered
    at the first of three kills)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and state_counts(env).undelivered == 0:
        time.sleep(0.01)


def _versions(s3: S3Server, bucket: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    paginator = s3.client().get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket):
        for version in page.get("Versions", []):
            counts[version["Key"]] = counts.get(version["Key"], 0) + 1
    return counts


def _record_ids(s3: S3Server, bucket: str, keys: list[str]) -> dict[str, str]:
    """Key -> the record id in the object's body (its latest version), read from S3."""

    def read(part: list[str]) -> dict[str, str]:
        client = s3.client()
        out = {}
        for key in part:
            body = orjson.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
            out[key] = str(body["data"]["result"][0]["fields"]["id"])
        return out

    parts = [keys[i::4] for i in range(4)]
    with ThreadPoolExecutor(4) as pool:
        return {k: v for found in pool.map(read, parts) for k, v in found.items()}


def crash_run(
    env: S3destEnv,
    log_dir: Path,
    s3: S3Server,
    *,
    cycles: int,
    batch: int = 50,
    seed: int | None = None,
    settle_timeout: float = 600,
    rate: float = 0,
) -> CrashFigures:
    """Set up a project and destination in `env`, run `cycles` kill -9/restart cycles under
    load, then wait for the queue to drain and check every acknowledged message."""
    rng = random.Random(seed)
    env.extra.update(CRASH_ENV)
    bucket = s3.create_bucket()
    s3.client().put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    _, api_key = env.create_project("crash")
    figures = CrashFigures()
    started = time.monotonic()
    server = serve(env, log_dir)
    try:
        with server.client(api_key) as client:
            create_destination(client, s3, bucket, "crash")
        sender = _Sender(server.url, api_key, batch, figures, rate)
        sender.start()
        for _ in range(cycles):
            # Each kill comes at a random moment after the (re)started server has accepted
            # something: on a loaded machine the first 202 can take longer than the sleep,
            # and a kill before it would cut nothing off.
            _wait_for_acceptance(sender, len(figures.acked), timeout=60)
            time.sleep(rng.uniform(0.3, 3.0))
            _wait_for_pending(env, timeout=10)
            server.kill()
            figures.cycles += 1
            # What the kill cut off, read from the database while no process runs.
            figures.at_kill.append(state_counts(env))
            time.sleep(rng.uniform(0.0, 1.0))
            server.start(timeout=120)
        time.sleep(rng.uniform(0.5, 2.0))  # some load after the last restart too
        sender.stop.set()
        sender.join(60)
        wait_queue_empty(server, api_key, settle_timeout)

        versions = _versions(s3, bucket)
        figures.objects = len(versions)
        figures.duplicates = sum(n - 1 for n in versions.values())
        keys = set(versions)
        acked = set(figures.acked)
        # The bucket alone decides: an acknowledged message is delivered when an object
        # whose key holds its event id is there with the record this script sent for it.
        key_of = {event_id: key for key in keys for event_id in _event_ids_in(key)}
        found = _record_ids(s3, bucket, [key_of[e] for e in figures.acked if e in key_of])
        figures.missing = [
            e for e in figures.acked if e not in key_of or found[key_of[e]] != figures.sent_ids[e]
        ]
        figures.delivered = sum(
            1 for e in figures.acked if e in key_of and found[key_of[e]] == figures.sent_ids[e]
        )
        figures.unacked_delivered = sum(1 for key in keys if not (_event_ids_in(key) & acked))
    finally:
        server.kill()
    figures.seconds = time.monotonic() - started
    return figures


def _event_ids_in(key: str) -> set[str]:
    # Default template: <rfc3339_nano>_<event-id>.json
    stem = key.rsplit("/", 1)[-1].removesuffix(".json")
    return {stem.rsplit("_", 1)[-1]}


@contextlib.contextmanager
def _database(kind: str) -> Iterator[str | None]:
    if kind == "sqlite":
        yield None
        return
    from tests.support.postgres import running_postgres

    with running_postgres() as pg:
        yield pg.create_database()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--rate", type=float, default=0, help="messages/s to send (0: as fast as accepted)"
    )
    args = parser.parse_args(argv)
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    s3 = start_moto_server()
    ok = True
    try:
        for kind in kinds:
            with tempfile.TemporaryDirectory(prefix="s3dest-crash-") as tmp, _database(kind) as url:
                env = S3destEnv(data_dir=Path(tmp) / "data", database_url=url)
                figures = crash_run(
                    env,
                    Path(tmp),
                    s3,
                    cycles=args.cycles,
                    batch=args.batch,
                    seed=args.seed,
                    rate=args.rate,
                )
                print(figures.line(kind), flush=True)
                if figures.missing:
                    ok = False
                    print(f"  missing event ids: {figures.missing[:20]}", flush=True)
    finally:
        s3.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
