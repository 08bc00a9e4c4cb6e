"""A fault scenario against a running `s3dest serve`, through the fault proxy
(tests/support/fault_proxy.py).

`FaultScenario` drives a running ``s3dest serve`` through the proxy: a destination on it, N
messages, wait until nothing is left in flight, then check every message and object and
collect the figures. tests/integration/test_faults.py runs it at suite size; bench/faults.py
at the issue's size.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from tests.support.fault_proxy import FaultProxy
from tests.support.fault_state import FaultStats

__all__ = ["FaultRunResult", "FaultScenario"]


@dataclass
class FaultRunResult:
    """What one scenario showed. `problems` lists every broken promise (empty: all kept)."""

    n: int
    ingest_seconds: float
    total_seconds: float
    states: dict[str, int]  # final delivery state → messages
    attempts: int  # sum of attempts over all messages
    failed_attempts: dict[str, int]  # outcome of each failed attempt (retrying, held, parked)
    stats: FaultStats
    problems: list[str]

    @property
    def retries(self) -> int:
        return self.attempts - self.n

    @property
    def delivered(self) -> int:
        return self.states.get("delivered", 0)

    @property
    def natural_failures(self) -> int:
        """Failed attempts beyond the injected faults: timeouts of a loaded machine."""
        return self.retries - self.stats.injected_puts

    @property
    def duplicates_allowed(self) -> int:
        """What at-least-once allows: one duplicate per failed attempt whose PUT may have
        reached S3 — an after-forward fault, or a natural failure (a timeout)."""
        return self.stats.injected_at("after") + max(0, self.natural_failures)

    def figures(self) -> dict[str, Any]:
        s = self.stats
        return {
            "messages": self.n,
            "delivered": self.delivered,
            "states": self.states,
            "requests_through_proxy": s.requests,
            "faults_injected": s.total_injected,
            "faults_by_kind": s.by_kind(),
            "faults_before_forward": s.injected_at("before"),
            "faults_after_forward": s.injected_at("after"),
            "retries": self.retries,
            "failed_attempts": self.failed_attempts,
            "natural_failures": self.natural_failures,
            "slow_answers": s.slow_forwards,
            "upstream_errors": s.upstream_errors,
            "duplicate_puts": s.duplicate_puts,
            "duplicated_keys": s.duplicated_keys,
            "duplicates_allowed": self.duplicates_allowed,
            "duplicates_the_proxy_cannot_place": sum(s.unexplained_duplicates().values()),
            "ingest_seconds": round(self.ingest_seconds, 2),
            "total_seconds": round(self.total_seconds, 2),
            "messages_per_second": round(self.n / self.total_seconds, 1)
            if self.total_seconds
            else None,
            "problems": len(self.problems),
        }


class FaultScenario:
    """Drive N messages through a destination whose endpointUrl is the fault proxy."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        project_id: str,
        proxy: FaultProxy,
        *,
        s3: Any,  # tests.support.moto_server.S3Server
        bucket: str,
    ) -> None:
        import httpx

        self.http = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=120
        )
        self.project_id = project_id
        self.proxy = proxy
        self.s3 = s3
        self.bucket = bucket
        self.destination = "faulty"
        self.sent: dict[str, bytes] = {}  # event id → the body S3 must hold

    def close(self) -> None:
        self.http.close()

    def create_destination(self) -> dict[str, Any]:
        from tests.support.builders import create_destination

        return create_destination(
            self.http, self.s3, self.bucket, self.destination, endpoint=self.proxy.url
        )

    def message(self, i: int) -> tuple[dict[str, Any], bytes]:
        """An ingest message and the exact bytes its object must hold."""
        import orjson

        fields = {"id": str(i), "email": f"user{i}@example.com", "n": i, "pad": "x" * (i % 97)}
        incoming = {
            "destination": self.destination,
            "action": "read",
            "provider": "generic",
            "installationId": f"inst-{i % 7}",
            "objectName": "contacts",
            "operationId": f"op-{i}",
            "result": [{"fields": fields}],
        }
        data = {
            "action": "read",
            "projectId": self.project_id,
            "provider": "generic",
            "installationId": incoming["installationId"],
            "objectName": "contacts",
            "operationId": incoming["operationId"],
            "result": [{"fields": fields}],
        }
        return incoming, orjson.dumps({"data": data})

    def send(self, n: int, *, batch: int = 100, start: int = 0) -> float:
        began = time.monotonic()
        for first in range(start, start + n, batch):
            pairs = [self.message(i) for i in range(first, min(start + n, first + batch))]
            response = self.http.post("/v1/messages", json={"messages": [m for m, _ in pairs]})
            assert response.status_code == 202, response.text
            accepted = response.json()["accepted"]
            assert len(accepted) == len(pairs)
            for item, (_m, body) in zip(accepted, pairs, strict=True):
                self.sent[item["eventId"]] = body
        return time.monotonic() - began

    def pending(self) -> dict[str, bool]:
        """Which unsettled states still have messages (queued, delivering, retrying, held),
        from one read: the `s3dest_messages` gauges of /metrics, counted in one query. A
        request per state read them at different moments, and a message claimed between
        the "delivering" and the "retrying" reads (retrying → delivering) was in neither:
        the wait saw nothing pending while a retry was in flight."""
        response = self.http.get("/metrics")
        assert response.status_code == 200, response.text
        counts = dict.fromkeys(("queued", "delivering", "retrying", "held"), 0.0)
        for line in response.text.splitlines():
            if line.startswith("s3dest_messages{"):
                state = line.partition('state="')[2].partition('"')[0]
                if state in counts:
                    counts[state] += float(line.rsplit(" ", 1)[1])
        return {state: count > 0 for state, count in counts.items()}

    def wait(self, timeout: float) -> bool:
        """Wait until nothing is queued, delivering or retrying; False on timeout.

        Held messages stop the wait too (they wait for a fix that will not come here)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pending = self.pending()
            if not (pending["queued"] or pending["delivering"] or pending["retrying"]):
                return True
            time.sleep(0.25)
        return False

    def records(self) -> dict[str, dict[str, Any]]:
        from concurrent.futures import ThreadPoolExecutor

        def get(event_id: str) -> tuple[str, dict[str, Any]]:
            response = self.http.get(f"/v1/messages/{event_id}")
            assert response.status_code == 200, response.text
            return event_id, response.json()

        with ThreadPoolExecutor(4) as pool:
            return dict(pool.map(get, list(self.sent)))

    def objects(self, keys: list[str]) -> dict[str, bytes | None]:
        from concurrent.futures import ThreadPoolExecutor

        client = self.s3.client()

        def get(key: str) -> tuple[str, bytes | None]:
            try:
                body: bytes = client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                return key, body
            except client.exceptions.NoSuchKey:
                return key, None

        with ThreadPoolExecutor(8) as pool:
            return dict(pool.map(get, keys))

    def run(self, n: int, *, timeout: float, batch: int = 100) -> FaultRunResult:
        began = time.monotonic()
        ingest_seconds = self.send(n, batch=batch)
        settled = self.wait(timeout)
        total = time.monotonic() - began
        return self.verify(n, ingest_seconds, total, settled=settled, timeout=timeout)

    def verify(
        self, n: int, ingest_seconds: float, total: float, *, settled: bool, timeout: float
    ) -> FaultRunResult:
        problems: list[str] = []
        if not settled:
            problems.append(f"messages still in flight after {timeout:.0f} s")
        records = self.records()
        states: Counter[str] = Counter(r["state"] for r in records.values())
        failed: Counter[str] = Counter()
        attempts = 0
        for event_id, r in records.items():
            attempts += int(r["attempts"])
            for h in r.get("history") or []:
                if h["outcome"] != "delivered":
                    failed[h["outcome"]] += 1
                if h["outcome"] in ("held", "parked"):
                    problems.append(f"{event_id}: an attempt was {h['outcome']}: {h['error']}")
            if r["state"] != "delivered":
                problems.append(
                    f"{event_id}: {r['state']} ({r['lastErrorKind']}: {r['lastError']})"
                )
            elif r["lastErrorKind"] not in (None, "transient"):
                problems.append(f"{event_id}: delivered after a {r['lastErrorKind']} error")
        delivered = {e: r for e, r in records.items() if r["state"] == "delivered"}
        objects = self.objects([r["key"] for r in delivered.values()])
        for event_id, r in delivered.items():
            if r["bucket"] != self.bucket:
                problems.append(f"{event_id}: delivered to bucket {r['bucket']!r}")
            body = objects.get(r["key"])
            if body is None:
                problems.append(
                    f"{event_id}: reported delivered at {r['key']!r} (attempts "
                    f"{r['attempts']}, etag {r['etag']}) but the bucket has no such object"
                )
            elif body != self.sent[event_id]:
                problems.append(f"{event_id}: object {r['key']!r} holds {body[:200]!r}")
        stats = self.proxy.stats()
        # Exact, per message: S3 cannot have acknowledged more PUTs of a key than s3dest made
        # attempts for the message (a retry follows only a failure s3dest saw).
        by_key = {f"/{self.bucket}/{r['key']}": r for r in records.values() if r["key"]}
        for path, acks in sorted(stats.puts_acknowledged.items()):
            record = by_key.get(path)
            if record is None:
                problems.append(f"S3 holds {path}, which no message was delivered to")
            elif acks > int(record["attempts"]):
                history = [
                    (round(h["startedAt"] % 1000, 3), round(h["finishedAt"] % 1000, 3), h["error"])
                    for h in record.get("history") or []
                ]
                problems.append(
                    f"{record['eventId']}: S3 acknowledged {acks} PUTs of {path} but s3dest "
                    f"made {record['attempts']} attempts; proxy saw {stats.trace.get(path)}; "
                    f"attempts {history}"
                )
        # In total: duplicates only where a failed attempt may have reached S3.
        natural = attempts - n - stats.injected_puts
        allowed = stats.injected_at("after") + max(0, natural)
        if stats.duplicate_puts > allowed:
            problems.append(
                f"{stats.duplicate_puts} duplicate PUTs, more than the {allowed} at-least-once "
                f"allows ({stats.injected_at('after')} after-forward faults + {natural} "
                "natural failures)"
            )
        return FaultRunResult(
            n=n,
            ingest_seconds=ingest_seconds,
            total_seconds=total,
            states=dict(states),
            attempts=attempts,
            failed_attempts=dict(failed),
            stats=stats,
            problems=problems,
        )

    def metric(self, name: str) -> float:
        """Sum of a Prometheus counter over its labels, from /metrics."""
        response = self.http.get("/metrics")
        assert response.status_code == 200, response.text
        total = 0.0
        for line in response.text.splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                total += float(line.rsplit(" ", 1)[1])
        return total
