"""The queue's SQLite statements, in sqlite3's own SQL (``?`` parameters, tuples).

The hot statements skip SQLAlchemy's statement execution and typed row processing, which
cost more than the statements themselves on a claim or a batch of outcomes of 32 rows.
"""

from __future__ import annotations

from s3dest.store.tables import DUE_STATES_SQL

# The claim. SQLite, without statistics, prefers ix_messages_claim (state = ?) and then
# sorts every due row for the ORDER BY: a claim's cost grew with the backlog (measured:
# server CPU 43 % → 82 % of a core at a steady 200 msg/s as 30,000 messages queued up).
# INDEXED BY pins the partial index, which yields rows in due order and stops after the
# limit. No second state check (PostgreSQL's fence): the transaction is BEGIN IMMEDIATE, so
# nothing writes between the subquery and the update, and the check would again steer
# SQLite to a scan of ix_messages_claim.
# Parameters: owner, lease expiry, now, now, limit.
CLAIM = (
    "UPDATE messages SET state = 'delivering', lease_owner = ?, lease_expires_at = ?, "
    "updated_at = ? WHERE event_id IN ("
    "SELECT event_id FROM messages INDEXED BY ix_messages_due "
    f"WHERE {DUE_STATES_SQL} AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?) "
    "RETURNING event_id, project_id, destination_id, event_time_ns, accepted_at, connection_id, "
    "topic, body, body_size, chunked, envelope, attempts, batch_leader, batch_compression"
)
# The same when projects at their in-flight bound in this worker are passed over (fair
# share). Filtering them out of the due-order walk above read every due row of a passed-
# over project before it found another's: with 100,000 of A's messages due and A at its
# bound, each claim for B cost 50 ms of CPU with SQLite's one write lock held (issue 13).
# Instead: the projects with due messages, one index seek each on ix_messages_due_project
# (a skip scan); then each other project's oldest due messages, up to the limit, from the
# same index; the oldest of those are claimed by id. Nothing writes in between: BEGIN
# IMMEDIATE.
DUE_PROJECTS = (
    "WITH RECURSIVE due(id) AS ("
    "SELECT (SELECT project_id FROM messages INDEXED BY ix_messages_due_project "
    f"WHERE {DUE_STATES_SQL} ORDER BY project_id LIMIT 1) "
    "UNION ALL "
    "SELECT (SELECT project_id FROM messages INDEXED BY ix_messages_due_project "
    f"WHERE {DUE_STATES_SQL} AND project_id > due.id ORDER BY project_id LIMIT 1) "
    "FROM due WHERE due.id IS NOT NULL) "
    "SELECT id FROM due WHERE id IS NOT NULL"
)
# Parameters: project id, now, limit.
DUE_OF_PROJECT = (
    "SELECT next_attempt_at, event_id FROM messages INDEXED BY ix_messages_due_project "
    f"WHERE {DUE_STATES_SQL} AND project_id = ? AND next_attempt_at <= ? "
    "ORDER BY next_attempt_at LIMIT ?"
)
# Parameters: owner, lease expiry, now, a JSON array of event ids.
CLAIM_IDS = (
    CLAIM[: CLAIM.index("WHERE event_id IN (")]
    + ("WHERE event_id IN (SELECT value FROM json_each(?)) ")
    + CLAIM[CLAIM.index("RETURNING") :]
)
# The claimed messages' destinations' versions. Parameter: a JSON array of their ids.
VERSIONS = "SELECT id, version FROM destinations WHERE id IN (SELECT value FROM json_each(?))"

# Recording outcomes: the same work as PostgreSQL's one statement, as executemany (no round
# trips in-process). First, in one statement, the chunks of the messages this lease is about
# to record delivered (there is no RETURNING from an executemany to tell which ones it
# updated, and under BEGIN IMMEDIATE nothing else writes between this and the updates).
# Parameters: a JSON array of event ids, owner.
DROP_CHUNKS = (
    "DELETE FROM message_chunks WHERE event_id IN (SELECT event_id FROM messages "
    "WHERE event_id IN (SELECT value FROM json_each(?)) AND chunked "
    "AND lease_owner = ? AND state = 'delivering')"
)
# Parameters: state, bucket, key, etag, version, error, error kind, next attempt, delivered
# at, now, event id, owner.
FINISH = (
    "UPDATE messages SET state = ?, attempts = attempts + 1, lease_owner = NULL, "
    "lease_expires_at = NULL, bucket = ?, object_key = ?, etag = ?, version_id = ?, "
    "last_error = ?, last_error_kind = ?, next_attempt_at = ?, delivered_at = ?, "
    # The delivery record keeps its inline body, for re-delivery (issue 15) until retention
    # prunes the record; a large body's chunks go when it is delivered (DROP_CHUNKS).
    "updated_at = ? "
    "WHERE event_id = ? AND lease_owner = ? AND state = 'delivering'"
)
# Parameters: event id, worker, started at, finished at, outcome, error.
ATTEMPT = (
    "INSERT INTO delivery_attempts (event_id, worker, started_at, finished_at, outcome, error) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
