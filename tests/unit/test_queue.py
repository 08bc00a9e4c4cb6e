"""The durable queue (store/queue/) on SQLite and PostgreSQL: leases, fencing, holds,
probes, replay, chunks."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, insert, select, text, update

from s3dest.errors import Conflict, NotFound
from s3dest.settings import Settings
from s3dest.store import queue
from s3dest.store.engine import make_engine, transaction, upgrade
from s3dest.store.queue import operations
from s3dest.store.tables import (
    DUE_STATES_SQL,
    destinations,
    message_chunks,
    messages,
    projects,
)

PROJECT = "p-1"
DEST = "d-1"


@pytest.fixture
def engine(database_url: str | None, tmp_path: Path) -> Iterator[Engine]:
    engine = _queue_engine(database_url, tmp_path)
    yield engine
    engine.dispose()


def _queue_engine(database_url: str | None, tmp_path: Path) -> Engine:
    """A migrated database with a project and two destinations (d-1, d-2)."""
    engine = make_engine(Settings(data_dir=tmp_path / "data", database_url=database_url))
    upgrade(engine)
    now = time.time()
    with transaction(engine) as conn:
        conn.execute(insert(projects), [{"id": PROJECT, "name": "p", "created_at": now}])
        conn.execute(
            insert(destinations),
            [
                {
                    "id": did,
                    "project_id": PROJECT,
                    "name": did,
                    "bucket": "b",
                    "region": "us-east-1",
                    "access_key_id": "AKIA",
                    "secret_access_key_enc": "x",
                    "storage_class": "STANDARD",
                    "write_mode": "overwrite",
                    "enabled": True,
                    "probe_attempts": 0,
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                }
                for did in (DEST, "d-2")
            ],
        )
    return engine


def _row(n: int, destination: str = DEST, **extra: Any) -> dict[str, Any]:
    now = time.time()
    return {
        "event_id": f"e-{n:05d}",
        "project_id": PROJECT,
        "destination_id": destination,
        "state": "queued",
        "event_time_ns": time.time_ns(),
        "accepted_at": now,
        "connection_id": "",
        "topic": "",
        "object_name": "account",
        "body": b'{"data":{}}',
        "body_size": 11,
        "chunked": False,
        "envelope": None,
        "attempts": 0,
        "next_attempt_at": now,
        "updated_at": now,
        **extra,
    }


def _enqueue(engine: Engine, rows: list[dict[str, Any]]) -> None:
    with transaction(engine) as conn:
        queue.enqueue(conn, rows)


def _state(engine: Engine, event_id: str) -> Any:
    with transaction(engine) as conn:
        return conn.execute(
            select(messages.c.state, messages.c.lease_owner, messages.c.attempts).where(
                messages.c.event_id == event_id
            )
        ).one()


def _done(event_id: str, state: str = "delivered", **extra: Any) -> queue.Outcome:
    now = time.time()
    return queue.Outcome(event_id, state, now, now, bucket="b", key=f"k/{event_id}", **extra)


def test_claim_leases_due_messages_once(engine: Engine) -> None:
    _enqueue(engine, [_row(i) for i in range(10)])
    _enqueue(engine, [_row(99, next_attempt_at=time.time() + 3600)])  # not due yet
    first = queue.claim(engine, "w1", 4, 60)
    second = queue.claim(engine, "w2", 100, 60)
    assert len(first) == 4 and len(second) == 6
    assert not {c.event_id for c in first} & {c.event_id for c in second}
    assert queue.claim(engine, "w3", 100, 60) == []
    assert _state(engine, first[0].event_id)[:2] == ("delivering", "w1")
    assert first[0].body == b'{"data":{}}' and first[0].attempts == 0


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = _queue_engine(None, tmp_path)
    yield engine
    engine.dispose()


def _general_claim(engine: Engine, owner: str, limit: int, lease_seconds: float) -> list[Any]:
    """The claim as one SQLAlchemy statement (typed columns), the reference for SQLite's."""
    now = time.time()
    due = (
        select(messages.c.event_id)
        .where(text(DUE_STATES_SQL), messages.c.next_attempt_at <= now)
        .order_by(messages.c.next_attempt_at)
        .limit(limit)
    )
    columns = (
        messages.c.event_id,
        messages.c.project_id,
        messages.c.destination_id,
        messages.c.event_time_ns,
        messages.c.accepted_at,
        messages.c.connection_id,
        messages.c.topic,
        messages.c.body,
        messages.c.body_size,
        messages.c.chunked,
        messages.c.envelope,
        messages.c.attempts,
    )
    stmt = (
        update(messages)
        .where(messages.c.event_id.in_(due.scalar_subquery()), text(DUE_STATES_SQL))
        .values(
            state="delivering",
            lease_owner=owner,
            lease_expires_at=now + lease_seconds,
            updated_at=now,
        )
        .returning(*columns)
    )
    with transaction(engine) as conn:
        rows = conn.execute(stmt).all()
        ids = sorted({r.destination_id for r in rows})
        versions = {
            r.id: r.version
            for r in conn.execute(
                select(destinations.c.id, destinations.c.version).where(destinations.c.id.in_(ids))
            )
        }
    return [
        queue.Claimed(
            event_id=r.event_id,
            project_id=r.project_id,
            destination_id=r.destination_id,
            event_time_ns=r.event_time_ns,
            accepted_at=r.accepted_at,
            connection_id=r.connection_id,
            topic=r.topic,
            body=bytes(r.body) if r.body is not None else None,
            body_size=r.body_size,
            chunked=r.chunked,
            envelope=bytes(r.envelope) if r.envelope is not None else None,
            attempts=r.attempts,
            destination_version=versions.get(r.destination_id),
        )
        for r in rows
    ]


def test_the_sqlite_claim_returns_what_the_general_statement_returns(
    sqlite_engine: Engine,
) -> None:
    """SQLite's claim is plain sqlite3 SQL (`_claim_sqlite`); the same messages claimed
    through the general SQLAlchemy statement (`_general_claim`) come back field for field
    alike."""
    engine = sqlite_engine
    rows = [
        _row(1),
        _row(2, destination="d-2", attempts=3, connection_id="c-9", topic="contact.created"),
        _row(3, body=None, body_size=40_000_000, chunked=True, envelope=b'{"a":1}'),
    ]
    _enqueue(engine, rows)
    fast = sorted(queue.claim(engine, "w1", 10, 60), key=lambda c: c.event_id)
    queue.release(engine, "w1")
    with transaction(engine) as conn:
        conn.execute(update(messages).values(next_attempt_at=0.0))
    general = sorted(_general_claim(engine, "w2", 10, 60), key=lambda c: c.event_id)
    assert [c.event_id for c in fast] == ["e-00001", "e-00002", "e-00003"]
    assert fast == general
    assert (fast[1].attempts, fast[1].topic, fast[1].destination_version) == (
        3,
        "contact.created",
        1,
    )
    assert fast[2].chunked is True and fast[2].body is None and fast[2].envelope == b'{"a":1}'
    assert fast[0].chunked is False and isinstance(fast[0].body, bytes)


def test_concurrent_claimers_never_share_a_message(engine: Engine) -> None:
    _enqueue(engine, [_row(i) for i in range(400)])
    got: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def claimer(name: str) -> None:
        mine: list[str] = []
        try:
            while batch := queue.claim(engine, name, 7, 60):
                mine += [c.event_id for c in batch]
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        got[name] = mine

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    everything = [e for ids in got.values() for e in ids]
    assert len(everything) == 400 and len(set(everything)) == 400


def test_finish_is_fenced_on_the_lease_owner(engine: Engine) -> None:
    _enqueue(engine, [_row(1)])
    (item,) = queue.claim(engine, "slow", 1, 0.01)
    time.sleep(0.05)
    assert queue.reap_expired_leases(engine) == 1
    (again,) = queue.claim(engine, "fast", 1, 60)
    assert again.event_id == item.event_id
    # The worker whose lease expired cannot overwrite the new owner's work...
    assert queue.finish(engine, "slow", "slow", [_done(item.event_id)]) == 0
    assert _state(engine, item.event_id)[:2] == ("delivering", "fast")
    assert queue.extend_leases(engine, "slow", [item.event_id], 60) == set()
    assert queue.finish(engine, "fast", "fast", []) == 0  # nothing recorded, none held
    assert queue.extend_leases(engine, "fast", [item.event_id], 60) == {item.event_id}
    # ...the owner can; both attempts are on record.
    assert queue.finish(engine, "fast", "fast", [_done(item.event_id)]) == 1
    record = queue.get_record(engine, PROJECT, item.event_id)
    assert record.state == "delivered" and record.attempts == 1
    assert [h.worker for h in record.history] == ["slow", "fast"]
    assert record.delivered_at is not None


def test_a_claim_leases_no_more_than_its_limit_whatever_the_statistics(engine: Engine) -> None:
    # Statistics taken while nothing was due (as autovacuum mostly sees a queue that keeps
    # up) once made PostgreSQL re-run the claim's LIMIT … SKIP LOCKED subquery per row:
    # one claim leased the whole backlog.
    _enqueue(engine, [_row(i, state="delivered") for i in range(2000)])
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                "VACUUM ANALYZE messages"
            )
    _enqueue(engine, [_row(i) for i in range(2000, 2300)])
    assert len(queue.claim(engine, "w", 10, 60)) == 10


def test_a_lost_lease_leaves_the_chunks_to_the_new_owner(engine: Engine) -> None:
    parts = [bytes([i]) * 100 for i in range(3)]
    with transaction(engine) as conn:
        queue.write_chunks(conn, "e-00001", iter(parts))
        queue.enqueue(conn, [_row(1, body=None, body_size=300, chunked=True), _row(2)])
    first = queue.claim(engine, "slow", 2, 0.01)
    time.sleep(0.05)
    assert queue.reap_expired_leases(engine) == 2
    again = queue.claim(engine, "fast", 2, 60)
    # The stale delivery neither writes the record nor takes the body from the new owner.
    assert queue.finish(engine, "slow", "slow", [_done(i.event_id) for i in first]) == 0
    assert list(queue.read_chunks(engine, "e-00001")) == parts
    assert queue.finish(engine, "fast", "fast", [_done(i.event_id) for i in again]) == 2
    assert list(queue.read_chunks(engine, "e-00001")) == []
    record = queue.get_record(engine, PROJECT, "e-00001")
    assert record.state == "delivered" and [h.worker for h in record.history] == [
        "slow",
        "fast",
    ]


def test_retrying_waits_for_its_time_and_release_gives_back(engine: Engine) -> None:
    _enqueue(engine, [_row(1), _row(2)])
    a, b = queue.claim(engine, "w", 2, 60)
    later = time.time() + 3600
    queue.finish(
        engine, "w", "w", [_done(a.event_id, "retrying", error="SlowDown", next_attempt_at=later)]
    )
    assert _state(engine, a.event_id)[0] == "retrying"
    assert queue.release(engine, "w") == 1  # b, still leased
    assert _state(engine, b.event_id)[:2] == ("queued", None)
    assert [c.event_id for c in queue.claim(engine, "w2", 10, 60)] == [b.event_id]
    assert _next_due_in(engine) is None or _next_due_in(engine) > 3000


def _next_due_in(engine: Engine) -> float | None:
    """Seconds until the next claimable message is due (None when nothing waits)."""
    with transaction(engine) as conn:
        value = conn.execute(
            select(func.min(messages.c.next_attempt_at)).where(
                messages.c.state.in_(queue.CLAIMABLE)
            )
        ).scalar_one()
    return None if value is None else max(0.0, float(value) - time.time())


def test_hold_probe_and_resume(engine: Engine) -> None:
    _enqueue(engine, [_row(i) for i in range(5)] + [_row(50, destination="d-2")])
    claimed = queue.claim(engine, "w", 1, 60)
    queue.finish(engine, "w", "w", [_done(claimed[0].event_id, "held", error="AccessDenied")])
    queue.hold_destination(
        engine,
        DEST,
        diagnosis="Access denied",
        code="AccessDenied",
        probe_delay=lambda n: 0.0,
        version=1,
    )
    counts = queue.pending_counts(engine)
    assert counts[(DEST, "held")] == 5 and counts[("d-2", "queued")] == 1
    assert queue.queue_depth(engine) == 6
    # A probe releases exactly one held message of the failing destination.
    assert queue.release_probes(engine) == 1
    assert queue.release_probes(engine) == 0  # the next probe waits for this one's outcome
    probe = [c for c in queue.claim(engine, "w", 10, 60) if c.destination_id == DEST]
    assert len(probe) == 1
    # Its success on the same configuration clears the failure and releases the rest.
    queue.finish(
        engine,
        "w",
        "w",
        [_done(probe[0].event_id, destination_id=DEST, destination_version=1)],
    )
    with transaction(engine) as conn:
        failing = conn.execute(
            select(destinations.c.failing_since).where(destinations.c.id == DEST)
        ).scalar_one()
    assert failing is None
    assert queue.pending_counts(engine).get((DEST, "held"), 0) == 0
    assert queue.pending_counts(engine)[(DEST, "queued")] == 4


def test_a_success_on_an_older_configuration_does_not_clear_a_failure(engine: Engine) -> None:
    _enqueue(engine, [_row(1), _row(2)])
    a, _ = queue.claim(engine, "w", 2, 60)
    with transaction(engine) as conn:
        conn.execute(update(destinations).where(destinations.c.id == DEST).values(version=2))
    queue.hold_destination(
        engine, DEST, diagnosis="bad", code="AccessDenied", probe_delay=lambda n: 60.0, version=2
    )
    queue.finish(engine, "w", "w", [_done(a.event_id, destination_id=DEST, destination_version=1)])
    with transaction(engine) as conn:
        failing = conn.execute(
            select(destinations.c.failing_since).where(destinations.c.id == DEST)
        ).scalar_one()
    assert failing is not None


def test_a_stale_hold_releases_instead(engine: Engine) -> None:
    _enqueue(engine, [_row(1, state="held")])
    with transaction(engine) as conn:
        conn.execute(update(destinations).where(destinations.c.id == DEST).values(version=3))
    queue.hold_destination(
        engine, DEST, diagnosis="old", code="AccessDenied", probe_delay=lambda n: 1.0, version=2
    )
    assert _state(engine, "e-00001")[0] == "queued"


def test_replay(engine: Engine) -> None:
    _enqueue(engine, [_row(1), _row(2), _row(3)])
    items = queue.claim(engine, "w", 3, 60)
    queue.finish(
        engine,
        "w",
        "w",
        [_done(items[0].event_id, "parked", error="bad key")]
        + [_done(i.event_id, "parked", error="bad key") for i in items[1:2]]
        + [_done(items[2].event_id)],
    )
    queue.replay_message(engine, PROJECT, items[0].event_id)
    assert _state(engine, items[0].event_id)[0] == "queued"
    with pytest.raises(Conflict):
        queue.replay_message(engine, PROJECT, items[2].event_id)  # delivered
    with pytest.raises(NotFound):
        queue.replay_message(engine, "other-project", items[1].event_id)
    assert queue.replay_destination(engine, DEST) == 1
    assert _state(engine, items[1].event_id)[0] == "queued"


def test_chunks_round_trip_and_go_when_delivered(engine: Engine) -> None:
    parts = [bytes([i]) * 1000 for i in range(10)]
    other = [b"o" * 10, b"p" * 10]  # another large body, fewer chunks: each reads its own
    with transaction(engine) as conn:
        assert queue.write_chunks(conn, "e-00002", iter(other)) == 20
        assert queue.write_chunks(conn, "e-00001", iter(parts)) == 10_000
        queue.enqueue(conn, [_row(1, body=None, body_size=10_000, chunked=True)])
    assert list(queue.read_chunks(engine, "e-00001")) == parts
    assert list(queue.read_chunks(engine, "e-00002")) == other
    (item,) = queue.claim(engine, "w", 1, 60)
    assert item.body is None and item.chunked
    queue.finish(engine, "w", "w", [_done(item.event_id)])
    with transaction(engine) as conn:
        left = conn.execute(
            select(message_chunks.c.seq).where(message_chunks.c.event_id == "e-00001")
        ).all()
        body = conn.execute(
            select(messages.c.body).where(messages.c.event_id == "e-00001")
        ).scalar_one()
    assert left == [] and body is None
    assert queue.list_records(engine, PROJECT, state="delivered")[0].event_id == "e-00001"


# Found by `make mutate` (docs/mutation.md): these mutants of store/queue/operations.py had
# survived every unit test.


def _lease(engine: Engine, event_id: str) -> tuple[str | None, float | None, float]:
    with transaction(engine) as conn:
        row = conn.execute(
            select(
                messages.c.lease_owner, messages.c.lease_expires_at, messages.c.next_attempt_at
            ).where(messages.c.event_id == event_id)
        ).one()
    return row[0], row[1], row[2]


def _given_back_at(engine: Engine, event_id: str, since: float) -> None:
    """A message given back (released, reaped) holds no lease, is due from that moment, and
    its record says so: `nextAttemptAt` and `updatedAt` are the give-back's, not the
    claim's (kills `release`/`reap_expired_leases` without `lease_expires_at=None`,
    `next_attempt_at=now` or `updated_at=now`)."""
    owner, expires, due = _lease(engine, event_id)
    assert (owner, expires) == (None, None)
    record = queue.get_record(engine, PROJECT, event_id)
    assert since <= due == record.next_attempt_at <= time.time()
    assert since <= record.updated_at <= time.time()


def test_a_claim_leases_for_exactly_the_lease_seconds(engine: Engine) -> None:
    """Kills `now - lease_seconds` (a lease already expired when taken: any reaper would
    hand the message to a second worker while the first still writes it)."""
    _enqueue(engine, [_row(1)])
    before = time.time()
    (claimed,) = queue.claim(engine, "w", 1, 60)
    after = time.time()
    owner, expires, _ = _lease(engine, claimed.event_id)
    assert owner == "w"
    assert expires is not None and before + 60 <= expires <= after + 60
    assert claimed.accepted_at is not None and claimed.accepted_at <= before


def test_release_of_named_messages_gives_back_only_those(engine: Engine) -> None:
    """Kills the dropped `event_id IN (...)` filter: a worker handing back the claims it
    could not start must not give back the ones it is writing."""
    _enqueue(engine, [_row(1), _row(2), _row(3)])
    a, b, c = queue.claim(engine, "w", 3, 60)
    given_back = time.time()
    assert queue.release(engine, "w", [a.event_id]) == 1
    assert _state(engine, a.event_id)[:2] == ("queued", None)
    _given_back_at(engine, a.event_id, given_back)
    assert _state(engine, b.event_id)[:2] == ("delivering", "w")
    assert _state(engine, c.event_id)[:2] == ("delivering", "w")
    assert queue.release(engine, "other-worker", [b.event_id]) == 0  # not its lease


def test_reaping_counts_exactly_the_expired_leases(engine: Engine) -> None:
    """Kills `rowcount or 1` and a reap that leaves the old lease in place."""
    assert queue.reap_expired_leases(engine) == 0
    _enqueue(engine, [_row(1), _row(2), _row(3)])
    expired_a, expired_b, live = queue.claim(engine, "w", 3, 60)
    with transaction(engine) as conn:
        conn.execute(
            update(messages)
            .where(messages.c.event_id.in_([expired_a.event_id, expired_b.event_id]))
            .values(lease_expires_at=time.time() - 1)
        )
    reaped = time.time()
    assert queue.reap_expired_leases(engine) == 2
    for event_id in (expired_a.event_id, expired_b.event_id):
        assert _state(engine, event_id)[0] == "queued"
        _given_back_at(engine, event_id, reaped)
    assert _state(engine, live.event_id)[:2] == ("delivering", "w")
    assert queue.reap_expired_leases(engine) == 0


def test_a_claim_returns_each_field_as_it_was_stored(engine: Engine) -> None:
    """On both databases (PostgreSQL's claim builds its records apart from SQLite's): kills
    a claimed record with any field left out (project, event time, connection, topic, size,
    envelope, the destination's version, the batch it leads)."""
    rows = [
        _row(0, batch_leader="e-00000", batch_line=0),  # leads a batch (SPEC §9)
        _row(1, connection_id="c-1", topic="contact.created", body_size=11),
        _row(2, destination="d-2", attempts=3, envelope=b'{"a":1}'),
        _row(3, body=None, body_size=40_000_000, chunked=True),
    ]
    _enqueue(engine, rows)
    with transaction(engine) as conn:
        conn.execute(update(destinations).where(destinations.c.id == "d-2").values(version=7))
    claimed = sorted(queue.claim(engine, "w", 10, 60), key=lambda c: c.event_id)
    fields = [f for f in queue.Claimed.__dataclass_fields__ if f != "destination_version"]
    assert claimed == [
        queue.Claimed(
            **{f: r.get(f) for f in fields},
            destination_version=7 if r["destination_id"] == "d-2" else 1,
        )
        for r in rows
    ]


def test_a_claim_passes_over_the_projects_it_is_told_to(engine: Engine) -> None:
    """Fair share: a worker leaves a project at its in-flight bound out of its claims. Kills
    the exclusion dropped (SQLite, PostgreSQL) or given no projects."""
    now = time.time()
    with transaction(engine) as conn:
        conn.execute(insert(projects), [{"id": "p-2", "name": "p2", "created_at": now}])
        conn.execute(
            insert(destinations),
            [
                {
                    **conn.execute(select(destinations).where(destinations.c.id == DEST))
                    .one()
                    ._asdict(),
                    "id": "d-3",
                    "project_id": "p-2",
                    "name": "d-3",
                }
            ],
        )
    _enqueue(engine, [_row(1), _row(2), _row(3, destination="d-3", project_id="p-2")])
    only_other = queue.claim(engine, "w", 10, 60, exclude_projects=[PROJECT])
    assert [(c.event_id, c.project_id) for c in only_other] == [("e-00003", "p-2")]
    assert _state(engine, "e-00001")[:2] == ("queued", None)
    assert queue.claim(engine, "w", 10, 60, exclude_projects=[PROJECT, "p-2"]) == []
    rest = queue.claim(engine, "w", 10, 60, exclude_projects=["p-none"])
    assert sorted(c.event_id for c in rest) == ["e-00001", "e-00002"]


def _second_project(engine: Engine, project_id: str, destination_id: str) -> None:
    with transaction(engine) as conn:
        conn.execute(insert(projects), [{"id": project_id, "name": project_id, "created_at": 1}])
        conn.execute(
            insert(destinations),
            [
                {
                    **conn.execute(select(destinations).where(destinations.c.id == DEST))
                    .one()
                    ._asdict(),
                    "id": destination_id,
                    "project_id": project_id,
                    "name": destination_id,
                }
            ],
        )


def test_a_claim_that_passes_over_a_project_takes_the_others_oldest_first(
    engine: Engine,
) -> None:
    """The claim that leaves projects out takes the oldest due messages of all the others,
    up to the limit, and nothing not yet due."""
    now = time.time()
    for project_id, destination_id in (("p-2", "d-3"), ("p-3", "d-4")):
        _second_project(engine, project_id, destination_id)
    rows = [_row(i, next_attempt_at=now - 100 + i) for i in range(5)]
    rows += [
        _row(10 + i, "d-3", project_id="p-2", next_attempt_at=now - 50 + 2 * i) for i in range(4)
    ]
    rows += [
        _row(20 + i, "d-4", project_id="p-3", next_attempt_at=now - 49 + 2 * i) for i in range(4)
    ]
    rows += [_row(30, "d-4", project_id="p-3", next_attempt_at=now + 3600)]  # not due
    _enqueue(engine, rows)
    claimed = queue.claim(engine, "w", 5, 60, exclude_projects=[PROJECT])
    assert sorted(c.event_id for c in claimed) == [
        "e-00010",
        "e-00011",
        "e-00012",
        "e-00020",
        "e-00021",
    ]
    rest = queue.claim(engine, "w", 10, 60, exclude_projects=[PROJECT])
    assert sorted(c.event_id for c in rest) == ["e-00013", "e-00022", "e-00023"]


def _vm_steps(engine: Engine, work: Callable[[], object]) -> int:
    """SQLite virtual-machine instructions (in thousands) run by `work` on `engine`'s
    connections: what a statement reads, whatever the machine's load."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    @event.listens_for(engine, "connect")
    def _hook(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.set_progress_handler(count, 1000)

    engine.dispose()  # new connections, with the hook
    try:
        work()
    finally:
        event.remove(engine, "connect", _hook)
        engine.dispose()
    return steps


def test_a_claim_passing_over_a_busy_project_does_not_read_its_backlog(
    sqlite_engine: Engine,
) -> None:
    """Issue 13: a claim that passes over a project at its in-flight bound walked every due
    message of that project first, with SQLite's one write lock held: 50 ms of CPU per
    claim with 100,000 of them due. Its work must not grow with that backlog. Before:
    20x the steps for 20,000 due as for 1,000 (13 → 260 thousand)."""
    now = time.time()
    _second_project(sqlite_engine, "p-2", "d-3")
    _enqueue(sqlite_engine, [_row(900_000 + i, "d-3", project_id="p-2") for i in range(20)])

    def backlog(start: int, count: int) -> None:
        for first in range(start, start + count, 5_000):
            _enqueue(
                sqlite_engine,
                [
                    _row(i, next_attempt_at=now - 1_000)
                    for i in range(first, min(first + 5_000, start + count))
                ],
            )

    def claim_two() -> object:
        return queue.claim(sqlite_engine, "w", 2, 60, exclude_projects=[PROJECT])

    backlog(0, 1_000)
    small = _vm_steps(sqlite_engine, claim_two)
    backlog(1_000, 19_000)
    large = _vm_steps(sqlite_engine, claim_two)
    assert large < 2 * small + 5, (small, large)


def test_postgresqls_claim_passing_over_a_busy_project_does_not_read_its_backlog(
    pg_database_url: str, tmp_path: Path
) -> None:
    """As on SQLite, on PostgreSQL: the claim that passes over a project at its bound read
    every due row of that project first (a lone busy project at its bound: its whole
    backlog, on every claim). Its buffer reads must not grow with that backlog (EXPLAIN
    ANALYZE, rolled back). Before: 64 -> 431 buffers for 1,000 -> 20,000 passed over;
    after: 50 -> 59."""
    engine = _queue_engine(pg_database_url, tmp_path)
    try:
        now = time.time()
        _second_project(engine, "p-2", "d-3")
        _enqueue(engine, [_row(900_000 + i, "d-3", project_id="p-2") for i in range(20)])

        def backlog(start: int, count: int) -> None:
            for first in range(start, start + count, 5_000):
                last = min(first + 5_000, start + count)
                _enqueue(engine, [_row(i, next_attempt_at=now - 1_000) for i in range(first, last)])
            with engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                    "ANALYZE messages"
                )

        def buffers() -> int:
            from s3dest.store.queue import _postgres

            params = {
                "c_now": time.time(),
                "c_limit": 2,
                "c_owner": "w",
                "c_expires": time.time() + 60,
                "c_exclude": [PROJECT],
            }
            with engine.connect() as conn:
                plan = conn.execute(
                    text(
                        "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + str(_postgres.CLAIM_EXCLUDING)
                    ),
                    params,
                ).scalar_one()
                conn.rollback()
            top = plan[0]["Plan"]
            return int(top["Shared Hit Blocks"]) + int(top["Shared Read Blocks"])

        backlog(0, 1_000)
        small = buffers()
        backlog(1_000, 19_000)
        large = buffers()
        assert large < 2 * small + 10, (small, large)
    finally:
        engine.dispose()


def test_extending_a_lease_moves_only_the_named_ones_expiry(engine: Engine) -> None:
    """Kills an extension to no expiry (never reaped), to `now - lease_seconds` (reaped at
    once while the worker still writes), and one that extends every lease of the worker."""
    _enqueue(engine, [_row(1), _row(2)])
    a, b = queue.claim(engine, "w", 2, 60)
    b_expires = _lease(engine, b.event_id)[1]
    before = time.time()
    assert queue.extend_leases(engine, "w", [a.event_id], 600) == {a.event_id}
    after = time.time()
    expires = _lease(engine, a.event_id)[1]
    assert expires is not None and before + 600 <= expires <= after + 600
    assert _lease(engine, b.event_id)[1] == b_expires
    assert queue.reap_expired_leases(engine) == 0


def test_only_a_delivery_proves_the_destination_works(engine: Engine) -> None:
    """An outcome that is not a delivery leaves the destination failing, even when it names
    the destination and its version (kills the `and` of that rule turned into `or`)."""
    _enqueue(engine, [_row(1), _row(2)])
    a, _ = queue.claim(engine, "w", 2, 60)
    queue.hold_destination(
        engine, DEST, diagnosis="bad", code="AccessDenied", probe_delay=lambda n: 60.0, version=1
    )
    failed = _done(
        a.event_id, "retrying", error="SlowDown", destination_id=DEST, destination_version=1
    )
    assert queue.finish(engine, "w", "w", [failed]) == 1
    with transaction(engine) as conn:
        failing = conn.execute(
            select(destinations.c.failing_since).where(destinations.c.id == DEST)
        ).scalar_one()
    assert failing is not None


@pytest.mark.parametrize("state", ["retrying", "parked", "held"])
def test_only_a_delivered_message_has_a_delivery_time(engine: Engine, state: str) -> None:
    """Kills `delivered_at` written for every outcome (both databases' finish)."""
    _enqueue(engine, [_row(1), _row(2)])
    a, b = queue.claim(engine, "w", 2, 60)
    done = _done(b.event_id)
    assert queue.finish(engine, "w", "w", [_done(a.event_id, state, error="e"), done]) == 2
    assert queue.get_record(engine, PROJECT, a.event_id).delivered_at is None
    assert queue.get_record(engine, PROJECT, b.event_id).delivered_at == done.finished_at


def test_the_first_enqueue_of_a_column_set_in_a_process_builds_its_statement(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's INSERT is built once per column set and cached for the process. Under
    `make mutate` every test's column set was already cached (by the run that measured the
    tests), so a broken builder survived: here the cache starts empty."""
    monkeypatch.setattr(operations, "_SQLITE_INSERTS", {})
    rows = [_row(1, topic="t-1"), _row(2, topic="t-2")]
    _enqueue(sqlite_engine, rows)
    claimed = sorted(queue.claim(sqlite_engine, "w", 10, 60), key=lambda c: c.event_id)
    assert [(c.event_id, c.topic, c.body) for c in claimed] == [
        (r["event_id"], r["topic"], r["body"]) for r in rows
    ]
