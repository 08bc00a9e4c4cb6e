"""The durable queue: enqueue, claim with a lease, ack, retry, hold, park, replay.

States: queued → delivering → delivered; delivering → retrying (transient) → delivering…;
delivering → held (destination failing) → queued when it is fixed or probed;
delivering → parked (message error) → queued on replay.

A claim sets a lease (owner + expiry). Every transition out of ``delivering`` is fenced on
the owner, so a worker whose lease expired cannot overwrite the work of the worker that
took over. On PostgreSQL claims use ``FOR UPDATE SKIP LOCKED``; on SQLite the write lock
(BEGIN IMMEDIATE) serialises claimers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    bindparam,
    func,
    insert,
    select,
    text,
    update,
)

from s3dest.errors import Conflict, NotFound
from s3dest.store.engine import transaction
from s3dest.store.tables import DUE_STATES_SQL, attempts, destinations, message_chunks, messages

CLAIMABLE = ("queued", "retrying")
STATES = ("queued", "delivering", "retrying", "held", "parked", "delivered")


@dataclass(frozen=True, slots=True)
class Claimed:
    event_id: str
    project_id: str
    destination_id: str
    event_time_ns: int
    accepted_at: float
    connection_id: str
    topic: str
    body: bytes | None
    body_size: int
    chunked: bool
    envelope: bytes | None
    attempts: int
    # The destination's configuration version at claim time (read in the claim's
    # transaction), so the worker knows without another query whether to rebuild its client.
    destination_version: int | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt did; recorded by `finish`."""

    event_id: str
    state: str  # delivered | retrying | parked | held
    started_at: float
    finished_at: float
    bucket: str | None = None
    key: str | None = None
    etag: str | None = None
    version: str | None = None
    error: str | None = None
    error_kind: str | None = None
    next_attempt_at: float | None = None
    # For deliveries: the destination and the configuration version that wrote it. A
    # success proves the destination works, so `finish` clears its failure (if it is
    # still on that version) and lets its held messages go.
    destination_id: str | None = None
    destination_version: int | None = None


def enqueue(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert accepted messages (inside the caller's transaction)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        # One INSERT … SELECT FROM unnest(arrays) for the batch: psycopg's executemany
        # ran one INSERT per row (pipelined, but each parsed, planned and executed).
        names = _enqueue_columns(rows[0])
        defaults = [_MESSAGE_DEFAULTS.get(name) for name in names]
        params = {
            f"m_{name}": [row.get(name, default) for row in rows]
            for name, default in zip(names, defaults, strict=True)
        }
        conn.exec_driver_sql(_pg_enqueue_statement(names), params)
    else:
        conn.execute(insert(messages), list(rows))


# Scalar Python-side defaults of `messages` (what insert() fills in for a missing key).
_MESSAGE_DEFAULTS: dict[str, Any] = {
    c.name: c.default.arg  # type: ignore[attr-defined]
    for c in messages.columns
    if c.default is not None and c.default.is_scalar
}
_PG_ARRAY_TYPES = {
    "BIGINT": "BIGINT[]",
    "INTEGER": "INTEGER[]",
    "FLOAT": "FLOAT8[]",
    "BOOLEAN": "BOOLEAN[]",
    "BYTEA": "BYTEA[]",
}
_PG_ENQUEUE: dict[tuple[str, ...], str] = {}


def _enqueue_columns(row: dict[str, Any]) -> tuple[str, ...]:
    present = set(row) | set(_MESSAGE_DEFAULTS)
    return tuple(c.name for c in messages.columns if c.name in present)


def _pg_enqueue_statement(names: tuple[str, ...]) -> str:
    """psycopg SQL (binary arrays, as in _PG_FINISH) inserting rows of these columns."""
    stmt = _PG_ENQUEUE.get(names)
    if stmt is None:
        from sqlalchemy.dialects import postgresql

        dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
        arrays = ", ".join(
            f"CAST(%(m_{name})b AS "
            + _PG_ARRAY_TYPES.get(
                messages.c[name].type.compile(dialect=dialect).split("(")[0], "TEXT[]"
            )
            + ")"
            for name in names
        )
        columns = ", ".join(names)
        stmt = f"INSERT INTO messages ({columns}) SELECT * FROM unnest({arrays})"
        _PG_ENQUEUE[names] = stmt
    return stmt


def write_chunks(conn: Connection, event_id: str, chunks: Iterable[bytes]) -> int:
    size = 0
    batch: list[dict[str, Any]] = []
    for seq, chunk in enumerate(chunks):
        batch.append({"event_id": event_id, "seq": seq, "data": chunk})
        size += len(chunk)
        if len(batch) >= 4:
            conn.execute(insert(message_chunks), batch)
            batch = []
    if batch:
        conn.execute(insert(message_chunks), batch)
    return size


def read_chunks(engine: Engine, event_id: str) -> Iterator[bytes]:
    """Stream a large body chunk by chunk: one chunk in memory at a time."""
    seq = 0
    while True:
        with engine.connect() as conn:
            row = conn.execute(
                select(message_chunks.c.data).where(
                    message_chunks.c.event_id == event_id, message_chunks.c.seq == seq
                )
            ).first()
        if row is None:
            return
        yield bytes(row.data)
        seq += 1


_CLAIM_COLUMNS = (
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


def _claim_statement(dialect: str, exclude: bool) -> Any:
    """The claim UPDATE, built once per shape: only parameters change between calls."""
    key = (dialect, exclude)
    stmt = _CLAIM_STATEMENTS.get(key)
    if stmt is None and dialect == "sqlite":
        stmt = _sqlite_claim_statement(exclude)
        _CLAIM_STATEMENTS[key] = stmt
    if stmt is None and dialect == "postgresql":
        stmt = _pg_claim_statement(exclude)
        _CLAIM_STATEMENTS[key] = stmt
    if stmt is None:
        due = (
            select(messages.c.event_id)
            .where(
                # Literal, not bound: the planner must see it matches ix_messages_due's
                # predicate to use that index.
                text(DUE_STATES_SQL),
                messages.c.next_attempt_at <= bindparam("c_now"),
            )
            .order_by(messages.c.next_attempt_at)
            .limit(bindparam("c_limit", type_=Integer))
        )
        if exclude:
            due = due.where(
                messages.c.destination_id.not_in(bindparam("c_exclude", expanding=True))
            )
        stmt = (
            update(messages)
            # The state check again: a fence should the subquery ever see a stale row.
            .where(messages.c.event_id.in_(due.scalar_subquery()), text(DUE_STATES_SQL))
            .values(
                state="delivering",
                lease_owner=bindparam("c_owner"),
                lease_expires_at=bindparam("c_expires"),
                updated_at=bindparam("c_now"),
            )
            .returning(*_CLAIM_COLUMNS)
        )
        _CLAIM_STATEMENTS[key] = stmt
    return stmt


def _sqlite_claim_statement(exclude: bool) -> Any:
    # SQLite, without statistics, prefers ix_messages_claim (state = ?) and then sorts every
    # due row for the ORDER BY: a claim's cost grew with the backlog (measured: server CPU
    # 43 % → 82 % of a core at a steady 200 msg/s as 30,000 messages queued up). INDEXED BY
    # pins the partial index, which yields rows in due order and stops after `limit`.
    # SQLAlchemy cannot express INDEXED BY, hence the SQL text.
    columns = ", ".join(c.name for c in _CLAIM_COLUMNS)
    not_excluded = "AND destination_id NOT IN :c_exclude " if exclude else ""
    stmt = text(
        "UPDATE messages SET state = 'delivering', lease_owner = :c_owner, "
        "lease_expires_at = :c_expires, updated_at = :c_now "
        "WHERE event_id IN ("
        "SELECT event_id FROM messages INDEXED BY ix_messages_due "
        f"WHERE {DUE_STATES_SQL} AND next_attempt_at <= :c_now {not_excluded}"
        "ORDER BY next_attempt_at LIMIT :c_limit) "
        # No second state check here (PostgreSQL's fence): the transaction is BEGIN
        # IMMEDIATE, so nothing writes between the subquery and the update, and the check
        # would again steer SQLite to a scan of ix_messages_claim.
        f"RETURNING {columns}"
    )
    if exclude:
        stmt = stmt.bindparams(bindparam("c_exclude", expanding=True))
    return stmt.columns(*_CLAIM_COLUMNS)  # typed results (Boolean `chunked`, …)


def _pg_claim_statement(exclude: bool) -> Any:
    # `event_id = ANY(ARRAY(subquery))`, not `event_id IN (subquery)`: the ARRAY is an
    # InitPlan, run once. With IN, when the statistics say few rows are due (the table was
    # analysed while the queue was short, as it mostly is), the planner chose a nested loop
    # that ran the LIMIT … FOR UPDATE SKIP LOCKED subquery again for every due row; each
    # run skipped the rows this statement had already updated and took the next ones, so
    # one claim leased the whole backlog, in time quadratic in it (measured: 5,000 rows
    # claimed by one `limit 32` claim in 28 s, 14.6 M buffer hits).
    # The destinations' versions come with the claim (a CTE) instead of from a second query.
    columns = ", ".join(c.name for c in _CLAIM_COLUMNS)
    not_excluded = "AND destination_id <> ALL(CAST(:c_exclude AS TEXT[])) " if exclude else ""
    due = ", ".join(f"'{state}'" for state in CLAIMABLE)
    stmt = text(
        "WITH claimed AS ("
        "UPDATE messages SET state = 'delivering', lease_owner = :c_owner, "
        "lease_expires_at = :c_expires, updated_at = :c_now "
        "WHERE event_id = ANY(ARRAY("
        # The predicate as literals, so the planner sees it matches ix_messages_due's.
        f"SELECT event_id FROM messages WHERE {DUE_STATES_SQL} AND next_attempt_at <= :c_now "
        f"{not_excluded}ORDER BY next_attempt_at LIMIT :c_limit FOR UPDATE SKIP LOCKED)) "
        # The state check again: a fence should the subquery ever see a stale row. On
        # `state || ''`, an expression no partial index's predicate mentions: on `state`
        # itself, the planner (with stale statistics) proved the fence implies the predicate
        # of ix_messages_due or of the pending-only indexes and walked that whole index to
        # find the claimed ids, instead of looking them up by primary key.
        f"AND state || '' IN ({due}) "
        f"RETURNING {columns}) "
        f"SELECT claimed.*, destinations.version AS destination_version FROM claimed "
        "LEFT JOIN destinations ON destinations.id = claimed.destination_id"
    )
    return stmt.columns(*_CLAIM_COLUMNS, destinations.c.version.label("destination_version"))


_CLAIM_STATEMENTS: dict[tuple[str, bool], Any] = {}
_VERSIONS = select(destinations.c.id, destinations.c.version).where(
    destinations.c.id.in_(bindparam("v_ids", expanding=True))
)


def claim(
    engine: Engine, owner: str, limit: int, lease_seconds: float, *, exclude: Sequence[str] = ()
) -> list[Claimed]:
    """Lease up to `limit` due messages to `owner` (with their destinations' versions)."""
    now = time.time()
    params: dict[str, Any] = {
        "c_now": now,
        "c_limit": limit,
        "c_owner": owner,
        "c_expires": now + lease_seconds,
    }
    if exclude:
        params["c_exclude"] = list(exclude)
    dialect = engine.dialect.name
    if dialect == "sqlite" and not exclude:
        return _claim_sqlite(engine, owner, limit, now, now + lease_seconds)
    stmt = _claim_statement(dialect, bool(exclude))
    with transaction(engine) as conn:
        rows = conn.execute(stmt, params).all()
        versions: dict[str, int] = {}
        if dialect == "postgresql":
            versions = {r.destination_id: r.destination_version for r in rows}
        elif rows:
            ids = sorted({r.destination_id for r in rows})
            versions = {r.id: r.version for r in conn.execute(_VERSIONS, {"v_ids": ids})}
    return [
        Claimed(
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


# The worker's claim on SQLite, as plain sqlite3 SQL (the statement of
# `_sqlite_claim_statement`): SQLAlchemy's statement execution and typed row processing cost
# more than the UPDATE itself on a claim of 32 rows.
_SQLITE_CLAIM = (
    "UPDATE messages SET state = 'delivering', lease_owner = ?, lease_expires_at = ?, "
    "updated_at = ? WHERE event_id IN ("
    "SELECT event_id FROM messages INDEXED BY ix_messages_due "
    f"WHERE {DUE_STATES_SQL} AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?) "
    "RETURNING event_id, project_id, destination_id, event_time_ns, accepted_at, connection_id, "
    "topic, body, body_size, chunked, envelope, attempts"
)
_SQLITE_VERSIONS = (
    "SELECT id, version FROM destinations WHERE id IN (SELECT value FROM json_each(?))"
)


def _claim_sqlite(
    engine: Engine, owner: str, limit: int, now: float, expires: float
) -> list[Claimed]:
    with transaction(engine) as conn:
        rows = conn.exec_driver_sql(_SQLITE_CLAIM, (owner, expires, now, now, limit)).all()
        if not rows:
            return []
        ids = orjson.dumps(sorted({r[2] for r in rows})).decode()
        versions: dict[str, int] = dict(conn.exec_driver_sql(_SQLITE_VERSIONS, (ids,)).all())
    return [
        Claimed(
            event_id,
            project_id,
            destination_id,
            event_time_ns,
            accepted_at,
            connection_id,
            topic,
            body,
            body_size,
            bool(chunked),
            envelope,
            attempts,
            versions.get(destination_id),
        )
        for (
            event_id,
            project_id,
            destination_id,
            event_time_ns,
            accepted_at,
            connection_id,
            topic,
            body,
            body_size,
            chunked,
            envelope,
            attempts,
        ) in rows
    ]


def reap_expired_leases(engine: Engine) -> int:
    """Messages whose worker died (lease expired) become claimable again."""
    now = time.time()
    with transaction(engine) as conn:
        result = conn.execute(
            update(messages)
            .where(messages.c.state == "delivering", messages.c.lease_expires_at < now)
            .values(
                state="queued",
                lease_owner=None,
                lease_expires_at=None,
                next_attempt_at=now,
                updated_at=now,
            )
        )
    return int(result.rowcount or 0)


def extend_lease(engine: Engine, owner: str, event_id: str, lease_seconds: float) -> bool:
    with transaction(engine) as conn:
        result = conn.execute(
            update(messages)
            .where(
                messages.c.event_id == event_id,
                messages.c.lease_owner == owner,
                messages.c.state == "delivering",
            )
            .values(lease_expires_at=time.time() + lease_seconds)
        )
    return bool(result.rowcount)


def extend_leases(
    engine: Engine, owner: str, event_ids: Sequence[str], lease_seconds: float
) -> set[str]:
    """Extend the leases `owner` still holds among `event_ids`; returns those it holds."""
    if not event_ids:
        return set()
    with transaction(engine) as conn:
        rows = conn.execute(
            update(messages)
            .where(
                messages.c.event_id.in_(list(event_ids)),
                messages.c.lease_owner == owner,
                messages.c.state == "delivering",
            )
            .values(lease_expires_at=time.time() + lease_seconds)
            .returning(messages.c.event_id)
        ).all()
    return {r.event_id for r in rows}


def release(engine: Engine, owner: str, event_ids: Sequence[str] | None = None) -> int:
    """Give leased messages back (graceful shutdown)."""
    now = time.time()
    stmt = update(messages).where(messages.c.lease_owner == owner, messages.c.state == "delivering")
    if event_ids is not None:
        stmt = stmt.where(messages.c.event_id.in_(list(event_ids)))
    with transaction(engine) as conn:
        result = conn.execute(
            stmt.values(
                state="queued",
                lease_owner=None,
                lease_expires_at=None,
                next_attempt_at=now,
                updated_at=now,
            )
        )
    return int(result.rowcount or 0)


# What a destination's failure leaves behind, cleared when it is healthy again.
_NOT_FAILING: dict[str, Any] = {
    "failing_since": None,
    "diagnosis": None,
    "last_error_code": None,
    "probe_attempts": 0,
    "next_probe_at": None,
}
_HEALTHY = (
    update(destinations)
    .where(
        destinations.c.id == bindparam("h_id"),
        destinations.c.failing_since.is_not(None),
        destinations.c.version == bindparam("h_version"),
    )
    .values(**_NOT_FAILING)
)


# PostgreSQL: a whole batch of outcomes in ONE statement (arrays, unnest), where an
# executemany ran one UPDATE and one DELETE per outcome and one INSERT per attempt. Chunks
# are dropped only for messages this lease delivered that have chunks (RETURNING tells).
# psycopg's own placeholders: %(x)b sends the arrays in binary, which psycopg builds ~5×
# faster than text arrays (bytea ~60× faster). SQLAlchemy's text() cannot ask for that.
_PG_FINISH = (
    "WITH v AS (SELECT * FROM unnest("
    "CAST(%(ids)b AS TEXT[]), CAST(%(states)b AS TEXT[]), CAST(%(buckets)b AS TEXT[]), "
    "CAST(%(keys)b AS TEXT[]), CAST(%(etags)b AS TEXT[]), CAST(%(versions)b AS TEXT[]), "
    "CAST(%(errors)b AS TEXT[]), CAST(%(kinds)b AS TEXT[]), CAST(%(nexts)b AS FLOAT8[]), "
    "CAST(%(delivered)b AS FLOAT8[])) AS v(event_id, state, bucket, object_key, etag, "
    "version_id, last_error, last_error_kind, next_attempt_at, delivered_at)), "
    "done AS (UPDATE messages AS m SET state = v.state, attempts = m.attempts + 1, "
    "lease_owner = NULL, lease_expires_at = NULL, bucket = v.bucket, "
    "object_key = v.object_key, etag = v.etag, version_id = v.version_id, "
    "last_error = v.last_error, last_error_kind = v.last_error_kind, "
    "next_attempt_at = v.next_attempt_at, delivered_at = v.delivered_at, "
    "updated_at = %(now)s, "
    # The delivery record stays; a delivered message's body is no longer needed.
    "body = CASE WHEN v.state = 'delivered' THEN NULL ELSE m.body END "
    "FROM v WHERE m.event_id = v.event_id AND m.lease_owner = %(owner)s "
    # `state || ''`, as in the claim: the primary key finds the rows, not a walk of every
    # message in flight (or of the backlog) through a partial index's predicate.
    "AND m.state || '' = 'delivering' RETURNING m.event_id, m.chunked, m.state), "
    "dropped AS (DELETE FROM message_chunks AS c USING done WHERE c.event_id = done.event_id "
    "AND done.chunked AND done.state = 'delivered'), "
    "tried AS (INSERT INTO delivery_attempts "
    "(event_id, worker, started_at, finished_at, outcome, error) "
    "SELECT a.event_id, %(worker)s, a.started_at, a.finished_at, a.outcome, a.error FROM unnest("
    "CAST(%(a_ids)b AS TEXT[]), CAST(%(a_started)b AS FLOAT8[]), CAST(%(a_finished)b AS FLOAT8[]), "
    "CAST(%(a_states)b AS TEXT[]), CAST(%(a_errors)b AS TEXT[])) "
    "AS a(event_id, started_at, finished_at, outcome, error)) "
    "SELECT count(*) FROM done"
)
# SQLite: the same work as executemany (no round trips in-process), in sqlite3's own SQL
# with tuples, which spares SQLAlchemy's per-row parameter processing. First, in one
# statement, the chunks of the messages this lease is about to record delivered (there is
# no RETURNING from an executemany to tell which ones it updated, and under BEGIN IMMEDIATE
# nothing else writes between this and the updates).
_SQLITE_DROP_CHUNKS = (
    "DELETE FROM message_chunks WHERE event_id IN (SELECT event_id FROM messages "
    "WHERE event_id IN (SELECT value FROM json_each(?)) AND chunked "
    "AND lease_owner = ? AND state = 'delivering')"
)
_SQLITE_FINISH = (
    "UPDATE messages SET state = ?, attempts = attempts + 1, lease_owner = NULL, "
    "lease_expires_at = NULL, bucket = ?, object_key = ?, etag = ?, version_id = ?, "
    "last_error = ?, last_error_kind = ?, next_attempt_at = ?, delivered_at = ?, "
    # The delivery record stays; a delivered message's body is no longer needed.
    "updated_at = ?, body = CASE WHEN ? = 'delivered' THEN NULL ELSE body END "
    "WHERE event_id = ? AND lease_owner = ? AND state = 'delivering'"
)
_SQLITE_ATTEMPT = (
    "INSERT INTO delivery_attempts (event_id, worker, started_at, finished_at, outcome, error) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)


def finish(engine: Engine, owner: str, worker: str, outcomes: Sequence[Outcome]) -> int:
    """Record a batch of attempts in one transaction; returns how many still held the lease.

    Every outcome gets an attempt row. A message's record is written by its first outcome
    in the batch, and only while `owner` still holds its lease; a delivered message's
    chunks go with it (only then: a lost lease leaves them to the new owner).
    """
    if not outcomes:
        return 0
    now = time.time()
    first: dict[str, Outcome] = {}
    for o in outcomes:
        first.setdefault(o.event_id, o)
    updates = list(first.values())
    proven = {
        (o.destination_id, o.destination_version)
        for o in outcomes
        if o.state == "delivered" and o.destination_id and o.destination_version is not None
    }
    with transaction(engine) as conn:
        if engine.dialect.name == "postgresql":
            done = _finish_postgresql(conn, owner, worker, outcomes, updates, now)
        else:
            done = _finish_sqlite(conn, owner, worker, outcomes, updates, now)
        for destination_id, version in sorted(proven):
            assert destination_id is not None and version is not None
            _healthy(conn, destination_id, now, version=version)
    return done


def _finish_postgresql(
    conn: Connection,
    owner: str,
    worker: str,
    outcomes: Sequence[Outcome],
    updates: Sequence[Outcome],
    now: float,
) -> int:
    params = {
        "owner": owner,
        "worker": worker,
        "now": now,
        "ids": [o.event_id for o in updates],
        "states": [o.state for o in updates],
        "buckets": [o.bucket for o in updates],
        "keys": [o.key for o in updates],
        "etags": [o.etag for o in updates],
        "versions": [o.version for o in updates],
        "errors": [o.error for o in updates],
        "kinds": [o.error_kind for o in updates],
        "nexts": [o.next_attempt_at if o.next_attempt_at is not None else now for o in updates],
        "delivered": [o.finished_at if o.state == "delivered" else None for o in updates],
        "a_ids": [o.event_id for o in outcomes],
        "a_started": [o.started_at for o in outcomes],
        "a_finished": [o.finished_at for o in outcomes],
        "a_states": [o.state for o in outcomes],
        "a_errors": [o.error for o in outcomes],
    }
    return int(conn.exec_driver_sql(_PG_FINISH, params).scalar_one())


def _finish_sqlite(
    conn: Connection,
    owner: str,
    worker: str,
    outcomes: Sequence[Outcome],
    updates: Sequence[Outcome],
    now: float,
) -> int:
    delivered = [o.event_id for o in updates if o.state == "delivered"]
    if delivered:
        conn.exec_driver_sql(_SQLITE_DROP_CHUNKS, (orjson.dumps(delivered).decode(), owner))
    result = conn.exec_driver_sql(
        _SQLITE_FINISH,
        [
            (
                o.state,
                o.bucket,
                o.key,
                o.etag,
                o.version,
                o.error,
                o.error_kind,
                o.next_attempt_at if o.next_attempt_at is not None else now,
                o.finished_at if o.state == "delivered" else None,
                now,
                o.state,
                o.event_id,
                owner,
            )
            for o in updates
        ],
    )
    conn.exec_driver_sql(
        _SQLITE_ATTEMPT,
        [(o.event_id, worker, o.started_at, o.finished_at, o.state, o.error) for o in outcomes],
    )
    return int(result.rowcount or 0)


# ---------------------------------------------------------------------------
# Destination health: hold, probe, resume.


def hold_destination(
    engine: Engine,
    destination_id: str,
    *,
    diagnosis: str,
    code: str | None,
    probe_delay: Callable[[int], float],
    version: int,
) -> None:
    """Mark a destination failing and hold its pending messages until it is fixed.

    `version` is the configuration that failed: if the destination was updated since,
    the failure is stale and the messages it held are released instead.
    """
    now = time.time()
    with transaction(engine) as conn:
        row = conn.execute(
            select(
                destinations.c.failing_since,
                destinations.c.probe_attempts,
                destinations.c.version,
            ).where(destinations.c.id == destination_id)
        ).first()
        if row is None:
            return
        if row.version != version:
            conn.execute(
                update(messages)
                .where(messages.c.destination_id == destination_id, messages.c.state == "held")
                .values(state="queued", next_attempt_at=now, updated_at=now)
            )
            return
        attempts_so_far = (row.probe_attempts or 0) + 1
        conn.execute(
            update(destinations)
            .where(destinations.c.id == destination_id)
            .values(
                failing_since=row.failing_since or now,
                diagnosis=diagnosis,
                last_error_code=code,
                probe_attempts=attempts_so_far,
                next_probe_at=now + probe_delay(attempts_so_far),
            )
        )
        conn.execute(
            update(messages)
            .where(messages.c.destination_id == destination_id, messages.c.state.in_(CLAIMABLE))
            .values(state="held", updated_at=now)
        )


def mark_healthy(engine: Engine, destination_id: str) -> None:
    """A write succeeded: clear the failure and let every held message go."""
    with transaction(engine) as conn:
        _healthy(conn, destination_id, time.time())


def _healthy(
    conn: Connection, destination_id: str, now: float, *, version: int | None = None
) -> None:
    """Clear a destination's failure; with `version`, only if it is still that version.

    Cheap when the destination is not failing (one indexed update that matches nothing),
    so every successful flush of deliveries can call it: a success on a failing
    destination (a probe, or one written by another node) resumes it at once.
    """
    if version is not None:
        cleared = conn.execute(_HEALTHY, {"h_id": destination_id, "h_version": version}).rowcount
    else:
        cleared = conn.execute(
            update(destinations)
            .where(destinations.c.id == destination_id, destinations.c.failing_since.is_not(None))
            .values(**_NOT_FAILING)
        ).rowcount
    if cleared or version is None:
        conn.execute(
            update(messages)
            .where(messages.c.destination_id == destination_id, messages.c.state == "held")
            .values(state="queued", next_attempt_at=now, updated_at=now)
        )


def release_probes(engine: Engine) -> int:
    """For each failing destination whose probe is due, release one held message to try."""
    now = time.time()
    released = 0
    with transaction(engine) as conn:
        due = conn.execute(
            select(destinations.c.id).where(
                destinations.c.failing_since.is_not(None),
                destinations.c.next_probe_at <= now,
                destinations.c.enabled.is_(True),
            )
        ).all()
        for (destination_id,) in due:
            oldest = conn.execute(
                select(messages.c.event_id)
                .where(messages.c.destination_id == destination_id, messages.c.state == "held")
                .order_by(messages.c.accepted_at)
                .limit(1)
            ).first()
            if oldest is None:
                continue  # nothing held yet: look again on the next round
            conn.execute(
                update(destinations)
                .where(destinations.c.id == destination_id)
                # The probe's own outcome sets the next probe time (hold) or clears it.
                .values(next_probe_at=now + 3600)
            )
            conn.execute(
                update(messages)
                .where(messages.c.event_id == oldest.event_id)
                .values(state="queued", next_attempt_at=now, updated_at=now)
            )
            released += 1
    return released


# ---------------------------------------------------------------------------
# Replay and visibility.


def replay_message(engine: Engine, project_id: str, event_id: str) -> None:
    now = time.time()
    with transaction(engine) as conn:
        row = conn.execute(
            select(messages.c.state).where(
                messages.c.event_id == event_id, messages.c.project_id == project_id
            )
        ).first()
        if row is None:
            raise NotFound(f"no message {event_id!r} in this project")
        if row.state != "parked":
            raise Conflict(
                f"message {event_id} is {row.state}, not parked; only parked messages are "
                "replayed (queued and held ones are delivered by themselves)"
            )
        conn.execute(
            update(messages)
            .where(messages.c.event_id == event_id)
            .values(state="queued", next_attempt_at=now, updated_at=now)
        )


def replay_destination(engine: Engine, destination_id: str) -> int:
    now = time.time()
    with transaction(engine) as conn:
        result = conn.execute(
            update(messages)
            .where(messages.c.destination_id == destination_id, messages.c.state == "parked")
            .values(state="queued", next_attempt_at=now, updated_at=now)
        )
    return int(result.rowcount or 0)


def hold_pending(engine: Engine, destination_id: str) -> None:
    """A disabled destination keeps its messages held until it is enabled again."""
    now = time.time()
    with transaction(engine) as conn:
        conn.execute(
            update(messages)
            .where(messages.c.destination_id == destination_id, messages.c.state.in_(CLAIMABLE))
            .values(state="held", updated_at=now)
        )


_RECORD_COLUMNS = (
    messages.c.event_id,
    messages.c.project_id,
    messages.c.destination_id,
    messages.c.state,
    messages.c.event_time_ns,
    messages.c.accepted_at,
    messages.c.connection_id,
    messages.c.topic,
    messages.c.object_name,
    messages.c.body_size,
    messages.c.attempts,
    messages.c.next_attempt_at,
    messages.c.bucket,
    messages.c.object_key,
    messages.c.etag,
    messages.c.version_id,
    messages.c.last_error,
    messages.c.last_error_kind,
    messages.c.delivered_at,
    messages.c.updated_at,
)


def get_record(engine: Engine, project_id: str, event_id: str) -> dict[str, Any]:
    with transaction(engine) as conn:
        row = conn.execute(
            select(*_RECORD_COLUMNS).where(
                messages.c.event_id == event_id, messages.c.project_id == project_id
            )
        ).first()
        if row is None:
            raise NotFound(f"no message {event_id!r} in this project")
        tries = conn.execute(
            select(
                attempts.c.worker,
                attempts.c.started_at,
                attempts.c.finished_at,
                attempts.c.outcome,
                attempts.c.error,
            )
            .where(attempts.c.event_id == event_id)
            .order_by(attempts.c.id)
        ).all()
    record = dict(row._mapping)
    record["history"] = [dict(t._mapping) for t in tries]
    return record


def list_records(
    engine: Engine,
    project_id: str,
    *,
    destination_id: str | None = None,
    state: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    stmt = select(*_RECORD_COLUMNS).where(messages.c.project_id == project_id)
    if destination_id:
        stmt = stmt.where(messages.c.destination_id == destination_id)
    if state:
        stmt = stmt.where(messages.c.state == state)
    stmt = stmt.order_by(messages.c.updated_at.desc()).limit(limit)
    with transaction(engine) as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def counts_by_state(engine: Engine, project_id: str | None = None) -> dict[str, dict[str, int]]:
    """destination_id → state → count."""
    stmt = select(messages.c.destination_id, messages.c.state, func.count()).group_by(
        messages.c.destination_id, messages.c.state
    )
    if project_id is not None:
        stmt = stmt.where(messages.c.project_id == project_id)
    out: dict[str, dict[str, int]] = {}
    with transaction(engine) as conn:
        for destination_id, state, count in conn.execute(stmt):
            out.setdefault(destination_id, {})[state] = int(count)
    return out


PENDING = ("queued", "delivering", "retrying", "held", "parked")


def pending_counts(engine: Engine) -> dict[tuple[str, str], int]:
    """(destination id, state) → count of messages not delivered yet (all projects)."""
    stmt = (
        select(messages.c.destination_id, messages.c.state, func.count())
        .where(messages.c.state.in_(PENDING))
        .group_by(messages.c.destination_id, messages.c.state)
    )
    with transaction(engine) as conn:
        return {(d, s): int(n) for d, s, n in conn.execute(stmt)}


def queue_depth(engine: Engine) -> int:
    with transaction(engine) as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(messages)
                .where(messages.c.state.in_(("queued", "retrying", "delivering", "held")))
            ).scalar_one()
        )


def next_due_in(engine: Engine) -> float | None:
    """Seconds until the next retry is due (None when nothing waits)."""
    with transaction(engine) as conn:
        value = conn.execute(
            select(func.min(messages.c.next_attempt_at)).where(messages.c.state.in_(CLAIMABLE))
        ).scalar_one()
    return None if value is None else max(0.0, float(value) - time.time())


def vacuum_hint(engine: Engine) -> None:  # pragma: no cover - operational helper
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
