"""The queue's PostgreSQL statements.

The hot ones use psycopg's own placeholders: ``%(x)b`` sends arrays in binary, which
psycopg builds ~5× faster than text arrays (bytea ~60× faster); SQLAlchemy's text() cannot
ask for that.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import TextClause, text

from s3dest.store.queue.states import CLAIMABLE
from s3dest.store.tables import DUE_STATES_SQL, destinations, messages

# What a claim returns of each message (the fields of `Claimed`, but its destination's version).
CLAIM_COLUMNS = (
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
    messages.c.batch_leader,
    messages.c.batch_compression,
)


def _claim_statement(excluding: bool = False) -> Any:
    # `event_id = ANY(ARRAY(subquery))`, not `event_id IN (subquery)`: the ARRAY is an
    # InitPlan, run once. With IN, when the statistics say few rows are due (the table was
    # analysed while the queue was short, as it mostly is), the planner chose a nested loop
    # that ran the LIMIT … FOR UPDATE SKIP LOCKED subquery again for every due row; each
    # run skipped the rows this statement had already updated and took the next ones, so
    # one claim leased the whole backlog, in time quadratic in it (measured: 5,000 rows
    # claimed by one `limit 32` claim in 28 s, 14.6 M buffer hits).
    # The destinations' versions come with the claim (a CTE) instead of from a second query.
    columns = ", ".join(c.name for c in CLAIM_COLUMNS)
    due = ", ".join(f"'{state}'" for state in CLAIMABLE)
    if excluding:
        # Projects at their in-flight bound in this worker are passed over (fair share).
        # Filtering them out of the due-order walk read every due row of theirs first (a
        # lone busy project at its bound: its whole backlog, on every claim). Instead, as on
        # SQLite: the projects with due messages by a skip scan of ix_messages_due_project
        # (one index probe each), then each other project's oldest, locked per project.
        due_projects = (
            "WITH RECURSIVE due(id) AS ("
            f"(SELECT project_id FROM messages WHERE {DUE_STATES_SQL} "
            "ORDER BY project_id LIMIT 1) UNION ALL "
            f"SELECT (SELECT project_id FROM messages WHERE {DUE_STATES_SQL} "
            "AND project_id > due.id ORDER BY project_id LIMIT 1) FROM due "
            "WHERE due.id IS NOT NULL), "
        )
        candidates = (
            "SELECT c.event_id FROM due CROSS JOIN LATERAL ("
            f"SELECT event_id, next_attempt_at FROM messages WHERE {DUE_STATES_SQL} "
            # "Due by now", spelt as a row comparison over ix_messages_due_project's columns
            # and ordered by both: with `next_attempt_at <= :c_now` the planner walked
            # ix_messages_due in due order instead, filtering out every other project's row
            # (the cost this statement exists to avoid); this form only the composite
            # index can answer.
            "AND project_id = due.id AND (project_id, next_attempt_at) <= (due.id, :c_now) "
            "ORDER BY project_id, next_attempt_at LIMIT :c_limit FOR UPDATE SKIP LOCKED) c "
            "WHERE due.id IS NOT NULL AND NOT (due.id = ANY(:c_exclude)) "
            "ORDER BY c.next_attempt_at LIMIT :c_limit"
        )
    else:
        due_projects = "WITH "
        # The predicate as literals, so the planner sees it matches ix_messages_due's.
        candidates = (
            f"SELECT event_id FROM messages WHERE {DUE_STATES_SQL} AND next_attempt_at <= :c_now "
            "ORDER BY next_attempt_at LIMIT :c_limit FOR UPDATE SKIP LOCKED"
        )
    stmt: TextClause = text(
        due_projects + "claimed AS ("
        "UPDATE messages SET state = 'delivering', lease_owner = :c_owner, "
        "lease_expires_at = :c_expires, updated_at = :c_now "
        f"WHERE event_id = ANY(ARRAY({candidates})) "
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
    return stmt.columns(*CLAIM_COLUMNS, destinations.c.version.label("destination_version"))


# Parameters: c_owner, c_expires, c_now, c_limit (and c_exclude, a list of project ids).
CLAIM = _claim_statement()
CLAIM_EXCLUDING = _claim_statement(excluding=True)

# A whole batch of outcomes in ONE statement (arrays, unnest), where an executemany ran one
# UPDATE and one DELETE per outcome and one INSERT per attempt. Chunks are dropped only for
# messages this lease delivered that have chunks (RETURNING tells).
FINISH = (
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
    # The delivery record keeps its inline body, for re-delivery (issue 15) until retention
    # prunes the record; a large body's chunks go when it is delivered (`dropped`).
    "updated_at = %(now)s "
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

_ARRAY_TYPES = {
    "BIGINT": "BIGINT[]",
    "INTEGER": "INTEGER[]",
    "FLOAT": "FLOAT8[]",
    "BOOLEAN": "BOOLEAN[]",
    "BYTEA": "BYTEA[]",
}
_ENQUEUE: dict[tuple[str, ...], str] = {}


def enqueue_statement(names: tuple[str, ...]) -> str:
    """One INSERT … SELECT FROM unnest(arrays) of rows of these columns (binary arrays, as in
    FINISH; parameters ``m_<column>``): psycopg's executemany ran one INSERT per row
    (pipelined, but each parsed, planned and executed)."""
    stmt = _ENQUEUE.get(names)
    if stmt is None:
        from sqlalchemy.dialects import postgresql

        dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
        arrays = ", ".join(
            f"CAST(%(m_{name})b AS "
            + _ARRAY_TYPES.get(
                messages.c[name].type.compile(dialect=dialect).split("(")[0], "TEXT[]"
            )
            + ")"
            for name in names
        )
        columns = ", ".join(names)
        stmt = f"INSERT INTO messages ({columns}) SELECT * FROM unnest({arrays})"
        _ENQUEUE[names] = stmt
    return stmt
