"""An in-memory broker (`s3dest.delivery.broker.Broker`) for unit tests of the worker.

It keeps the queue's rules that the worker relies on: a claim leases due messages (queued
or retrying, next attempt due) in order; every transition out of `delivering` is fenced on
the lease owner; an outcome's attempt is always logged; a delivery clears its destination's
failure (for the configuration version it was sent with); a hold marks the destination
failing and holds its due messages. No SQL, no threads of its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from s3dest.destinations.runtime import secret_aad
from s3dest.destinations.secrets import SecretBox
from s3dest.errors import OrphanedUpload
from s3dest.messages import new_stamp
from s3dest.store.destinations import DestinationRow
from s3dest.store.queue import Claimed, Outcome

PROJECT_ID = "0199e0a2-6c1e-7c3a-9d1e-5f0b2a7c4d11"


@dataclass
class StoredMessage:
    """One message as the in-memory queue holds it."""

    event_id: str
    destination_id: str
    event_time_ns: int
    accepted_at: float
    body: bytes | None
    envelope: bytes | None = None
    chunks: list[bytes] = field(default_factory=list)
    state: str = "queued"
    attempts: int = 0
    next_attempt_at: float = 0.0
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    project_id: str = PROJECT_ID
    outcome: Outcome | None = None  # the last one recorded


@dataclass(frozen=True)
class Hold:
    destination_id: str
    diagnosis: str
    code: str | None
    version: int


def destination_row(
    box: SecretBox,
    destination_id: str,
    *,
    bucket: str | None = None,
    key_template: str | None = None,
    version: int = 1,
) -> DestinationRow:
    """A destination row with its secret encrypted by `box`, as the store keeps it."""
    now = time.time()
    return DestinationRow(
        id=destination_id,
        project_id=PROJECT_ID,
        name=f"dest-{destination_id}",
        bucket=bucket or f"bucket-{destination_id}",
        region="us-east-1",
        access_key_id="AKIAIOSFODNN7EXAMPLE",
        secret_access_key_enc=box.encrypt(
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            aad=secret_aad(destination_id, "secretAccessKey"),
        ),
        session_token_enc=None,
        key_template=key_template,
        storage_class="STANDARD",
        endpoint_url="http://127.0.0.1:9",
        write_mode="overwrite",
        enabled=True,
        role_arn=None,
        external_id=None,
        server_side_encryption=None,
        kms_key_id=None,
        bucket_key_enabled=None,
        acl=None,
        tags_json=None,
        failing_since=None,
        diagnosis=None,
        last_error_code=None,
        probe_attempts=0,
        next_probe_at=None,
        verified_at=None,
        version=version,
        created_at=now,
        updated_at=now,
    )


class MemoryBroker:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.messages: dict[str, StoredMessage] = {}
        self.destinations: dict[str, DestinationRow] = {}
        self.orphans: list[tuple[str, str, OrphanedUpload]] = []
        # What the worker did, in order: (event id, worker, outcome state) per attempt.
        self.attempts: list[tuple[str, str, str]] = []
        self.holds: list[Hold] = []
        self.released: list[str] = []  # owners that released at shutdown
        self.calls: dict[str, int] = {}

    # ------------------------------------------------------------------ test set-up
    def add_destination(self, row: DestinationRow) -> None:
        with self._lock:
            self.destinations[row.id] = row

    def enqueue(
        self,
        destination_id: str,
        data: dict[str, object] | None = None,
        *,
        body: bytes | None = None,
        chunks: Sequence[bytes] = (),
    ) -> str:
        """Queue one message: `data` (encoded as ingest stores it), a raw `body`, or a
        large body in `chunks` (with `data` as its envelope). Returns its event id."""
        stamp = new_stamp()
        data = data if data is not None else {"objectName": "contact", "n": len(self.messages)}
        if chunks:
            stored_body, envelope = None, orjson.dumps(data)
        else:
            stored_body = body if body is not None else orjson.dumps({"data": data})
            envelope = None
        message = StoredMessage(
            event_id=stamp.event_id,
            destination_id=destination_id,
            event_time_ns=stamp.event_time_ns,
            accepted_at=time.time(),
            body=stored_body,
            envelope=envelope,
            chunks=list(chunks),
            next_attempt_at=time.time(),
        )
        with self._lock:
            self.messages[message.event_id] = message
        return message.event_id

    def take_lease(self, event_id: str, owner: str = "another-worker") -> None:
        """Another worker takes the message over (as after a reap): this one lost its lease."""
        with self._lock:
            message = self.messages[event_id]
            message.lease_owner = owner
            message.lease_expires_at = time.time() + 60

    def state(self, event_id: str) -> str:
        with self._lock:
            return self.messages[event_id].state

    def states(self) -> dict[str, int]:
        with self._lock:
            counts: dict[str, int] = {}
            for message in self.messages.values():
                counts[message.state] = counts.get(message.state, 0) + 1
            return counts

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    # ------------------------------------------------------------------ the Broker protocol
    def claim(
        self, owner: str, limit: int, lease_seconds: float, exclude_projects: Sequence[str] = ()
    ) -> list[Claimed]:
        now = time.time()
        with self._lock:
            self._count("claim")
            due = sorted(
                (
                    m
                    for m in self.messages.values()
                    if m.state in ("queued", "retrying")
                    and m.next_attempt_at <= now
                    and m.project_id not in exclude_projects
                ),
                key=lambda m: m.next_attempt_at,
            )[:limit]
            claimed = []
            for m in due:
                m.state, m.lease_owner = "delivering", owner
                m.lease_expires_at = now + lease_seconds
                row = self.destinations.get(m.destination_id)
                claimed.append(
                    Claimed(
                        event_id=m.event_id,
                        project_id=m.project_id,
                        destination_id=m.destination_id,
                        event_time_ns=m.event_time_ns,
                        accepted_at=m.accepted_at,
                        connection_id="",
                        topic="",
                        body=m.body,
                        body_size=len(m.body or b"") + sum(len(c) for c in m.chunks),
                        chunked=bool(m.chunks),
                        envelope=m.envelope,
                        attempts=m.attempts,
                        destination_version=row.version if row is not None else None,
                    )
                )
            return claimed

    def extend_leases(self, owner: str, event_ids: Sequence[str], lease_seconds: float) -> set[str]:
        now = time.time()
        held = set()
        with self._lock:
            self._count("extend_leases")
            for event_id in event_ids:
                m = self.messages.get(event_id)
                if m is not None and m.lease_owner == owner and m.state == "delivering":
                    m.lease_expires_at = now + lease_seconds
                    held.add(event_id)
        return held

    def finish(self, owner: str, worker: str, outcomes: Sequence[Outcome]) -> int:
        now = time.time()
        done = 0
        seen: set[str] = set()
        with self._lock:
            self._count("finish")
            for o in outcomes:
                self.attempts.append((o.event_id, worker, o.state))
                if o.event_id in seen:
                    continue
                seen.add(o.event_id)
                m = self.messages.get(o.event_id)
                if m is None or m.lease_owner != owner or m.state != "delivering":
                    continue
                done += 1
                m.state, m.attempts, m.outcome = o.state, m.attempts + 1, o
                m.lease_owner = m.lease_expires_at = None
                m.next_attempt_at = o.next_attempt_at if o.next_attempt_at is not None else now
            for o in outcomes:
                if o.state == "delivered" and o.destination_id is not None:
                    row = self.destinations.get(o.destination_id)
                    if row is not None and row.version == o.destination_version:
                        self._healthy(row, now)
        return done

    def _healthy(self, row: DestinationRow, now: float) -> None:
        if row.verified_at is None:  # the first write: untested becomes healthy
            row = self.destinations[row.id] = replace(row, verified_at=now)
        if row.failing_since is None:
            return
        self.destinations[row.id] = replace(
            row,
            failing_since=None,
            diagnosis=None,
            last_error_code=None,
            probe_attempts=0,
            next_probe_at=None,
        )
        for m in self.messages.values():
            if m.destination_id == row.id and m.state == "held":
                m.state, m.next_attempt_at = "queued", now

    def release(self, owner: str, event_ids: Sequence[str] | None = None) -> int:
        now = time.time()
        released = 0
        with self._lock:
            self._count("release")
            if event_ids is None:
                self.released.append(owner)
            for m in self.messages.values():
                if event_ids is not None and m.event_id not in event_ids:
                    continue
                if m.lease_owner == owner and m.state == "delivering":
                    m.state, m.lease_owner, m.lease_expires_at = "queued", None, None
                    m.next_attempt_at = now
                    released += 1
        return released

    def reap_expired_leases(self) -> int:
        now = time.time()
        reaped = 0
        with self._lock:
            self._count("reap_expired_leases")
            for m in self.messages.values():
                expires = m.lease_expires_at
                if m.state == "delivering" and expires is not None and expires < now:
                    m.state, m.lease_owner, m.lease_expires_at = "queued", None, None
                    m.next_attempt_at = now
                    reaped += 1
        return reaped

    def hold_destination(
        self,
        destination_id: str,
        *,
        diagnosis: str,
        code: str | None,
        probe_delay: Callable[[int], float],
        version: int,
    ) -> None:
        now = time.time()
        with self._lock:
            self._count("hold_destination")
            self.holds.append(Hold(destination_id, diagnosis, code, version))
            row = self.destinations.get(destination_id)
            if row is None:
                return
            if row.version != version:
                for m in self.messages.values():
                    if m.destination_id == destination_id and m.state == "held":
                        m.state, m.next_attempt_at = "queued", now
                return
            probes = row.probe_attempts + 1
            self.destinations[destination_id] = replace(
                row,
                failing_since=row.failing_since or now,
                diagnosis=diagnosis,
                last_error_code=code,
                probe_attempts=probes,
                next_probe_at=now + probe_delay(probes),
            )
            for m in self.messages.values():
                if m.destination_id == destination_id and m.state in ("queued", "retrying"):
                    m.state = "held"

    def release_probes(self) -> int:
        now = time.time()
        released = 0
        with self._lock:
            self._count("release_probes")
            for row in list(self.destinations.values()):
                due = row.failing_since is not None and (row.next_probe_at or 0) <= now
                if not due or not row.enabled:
                    continue
                held = sorted(
                    (
                        m
                        for m in self.messages.values()
                        if m.destination_id == row.id and m.state == "held"
                    ),
                    key=lambda m: m.accepted_at,
                )
                if not held:
                    continue
                self.destinations[row.id] = replace(row, next_probe_at=now + 3600)
                held[0].state, held[0].next_attempt_at = "queued", now
                released += 1
        return released

    def read_chunks(self, event_id: str) -> Iterator[bytes]:
        with self._lock:
            chunks = list(self.messages[event_id].chunks)
        yield from chunks

    def batch_lines(self, leader_id: str) -> Sequence[Any]:
        """No batches here: batching is proven on the real queue (test_batches_store.py,
        tests/integration/test_batching.py)."""
        raise AssertionError("the in-memory broker seals no batches")

    def batch_size(self, leader_id: str) -> tuple[int, int]:
        raise AssertionError("the in-memory broker seals no batches")

    def seal_batches(self) -> int:
        with self._lock:
            self._count("seal_batches")
        return 0

    def destination(self, destination_id: str) -> DestinationRow | None:
        with self._lock:
            self._count("destination")
            return self.destinations.get(destination_id)

    def record_orphan(self, destination_id: str, event_id: str, orphan: OrphanedUpload) -> None:
        with self._lock:
            self._count("record_orphan")
            self.orphans.append((destination_id, event_id, orphan))
