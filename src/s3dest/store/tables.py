"""The database schema (SQLAlchemy Core). Alembic migrations create exactly these tables.

Times are Unix seconds as floats (portable between SQLite and PostgreSQL, cheap to
compare in claim queries); the event time is integer nanoseconds.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

projects = Table(
    "projects",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", Float, nullable=False),
    # Unique per server (revision 0009): `--project NAME` names exactly one project.
    Index("ux_projects_name", "name", unique=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("project_id", String(36), ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    # SHA-256 of the key: a stolen database does not yield working keys.
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
    # Migration 0004: a name the project chose, and when the key was last seen (written at
    # most once a minute per key, so authentication is not a write per request).
    Column("name", String(100), nullable=False, server_default="default"),
    Column("last_used_at", Float, nullable=True),
)
Index("ix_api_keys_project", api_keys.c.project_id)

# Dashboard sessions (migration 0004). The cookie carries a random id; the table holds only
# its SHA-256, so a copy of the database signs nobody in. A session ends at sign-out (the
# row is deleted), at `expires_at`, or when its key is revoked (it is looked up through a
# live key only).
dashboard_sessions = Table(
    "dashboard_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("project_id", String(36), ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("key_id", String(36), ForeignKey("api_keys.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)
Index("ix_dashboard_sessions_key", dashboard_sessions.c.key_id)
Index("ix_dashboard_sessions_expires", dashboard_sessions.c.expires_at)

# Who changed what in a project's configuration (migration 0004). `changes` is JSON text
# with field names and non-secret values only; the audit module masks secrets before here.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", String(36), primary_key=True),  # uuid7: ordered by time
    Column("project_id", String(36), ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("at", Float, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("key_prefix", String(16), nullable=True),
    Column("action", String(64), nullable=False),
    Column("target", String(300), nullable=False),
    Column("changes", Text, nullable=False),
)
Index("ix_audit_log_project", audit_log.c.project_id, audit_log.c.id)

destinations = Table(
    "destinations",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("project_id", String(36), ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("bucket", String(63), nullable=False),
    Column("region", String(64), nullable=False),
    # NULL for a role destination (role_arn), which has no keys.
    Column("access_key_id", String(128), nullable=True),
    Column("secret_access_key_enc", Text, nullable=True),
    Column("session_token_enc", Text, nullable=True),
    Column("key_template", Text, nullable=True),
    Column("storage_class", String(32), nullable=False),
    Column("endpoint_url", String(2048), nullable=True),
    Column("write_mode", String(16), nullable=False),
    Column("enabled", Boolean, nullable=False),
    # SPEC §8 (revision 0005): the role s3dest assumes and the external id it sends (set by
    # s3dest, kept for the destination's life), encryption, canned ACL, tags (a JSON object).
    Column("role_arn", String(2048), nullable=True),
    Column("external_id", String(64), nullable=True),
    Column("server_side_encryption", String(16), nullable=True),
    Column("kms_key_id", String(2048), nullable=True),
    Column("bucket_key_enabled", Boolean, nullable=True),
    Column("acl", String(32), nullable=True),
    Column("tags", Text, nullable=True),
    # Health: set by the delivery loop when S3 says the destination is broken.
    Column("failing_since", Float, nullable=True),
    Column("diagnosis", Text, nullable=True),
    Column("last_error_code", String(64), nullable=True),
    Column("probe_attempts", Integer, nullable=False, default=0),
    Column("next_probe_at", Float, nullable=True),
    # Revision 0010: when a write first succeeded (a passing connection test or a delivery);
    # NULL while the destination is untested, so its status never claims "healthy" unproven.
    Column("verified_at", Float, nullable=True),
    # Revision 0013 (SPEC §9): the batching settings as JSON (s3dest.batching.BatchSettings);
    # NULL for one object per message.
    Column("batch", Text, nullable=True),
    # Bumped on every update, so workers rebuild their client and held messages resume.
    Column("version", Integer, nullable=False, default=1),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("project_id", "name", name="uq_destinations_project_name"),
)

manifests = Table(
    "manifests",
    metadata,
    Column(
        "project_id", String(36), ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("source", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# The queue and the delivery record are one row per message: a message leaves the queue
# (state delivered or parked) in the same row that records how it got there.
messages = Table(
    "messages",
    metadata,
    Column("event_id", String(36), primary_key=True),
    Column("project_id", String(36), nullable=False),
    Column("destination_id", String(36), nullable=False),
    Column("state", String(16), nullable=False),
    Column("event_time_ns", BigInteger, nullable=False),
    Column("accepted_at", Float, nullable=False),
    # Fields of the metadata namespace that are not in the body.
    Column("connection_id", String(256), nullable=False, default=""),
    Column("topic", String(256), nullable=False, default=""),
    Column("object_name", String(256), nullable=False, default=""),
    # The compact body; NULL when it is stored in message_chunks (large) or delivered.
    Column("body", LargeBinary, nullable=True),
    Column("body_size", BigInteger, nullable=False),
    Column("chunked", Boolean, nullable=False, default=False),
    # For chunked bodies: the data object without `result`, for key templates.
    Column("envelope", LargeBinary, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_expires_at", Float, nullable=True),
    Column("bucket", String(63), nullable=True),
    Column("object_key", Text, nullable=True),
    Column("etag", String(128), nullable=True),
    Column("version_id", String(256), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("last_error_kind", String(16), nullable=True),
    Column("delivered_at", Float, nullable=True),
    Column("updated_at", Float, nullable=False),
    # Migration 0007: the message's installationId, for the deliveries search (NULL on rows
    # stored before it).
    Column("installation_id", String(256), nullable=True),
    # Migration 0013 (SPEC §9): the batch a message is sealed into (its leader's event id;
    # the leader's own; not `batch_id`, which staged_messages has for its ingest batch) and its
    # line in that object, from 0; NULL when not in a batch.
    Column("batch_leader", String(36), nullable=True),
    Column("batch_line", Integer, nullable=True),
    # Migration 0015: on a batch's leader, the compression it was sealed with, so that
    # every attempt writes the same object to the same key (the extension is the
    # compression's) even after the destination's `batch.compression` changed.
    Column("batch_compression", String(8), nullable=True),
)
# On PostgreSQL the state indexes leave delivered messages out (migration 0003): every
# claim and outcome changes `state`, so no update is HOT and each one writes to every index;
# this way recording a delivery writes to two indexes fewer, and these stay backlog-sized.
PENDING_SQL = "state <> 'delivered'"
Index(
    "ix_messages_claim",
    messages.c.state,
    messages.c.next_attempt_at,
    postgresql_where=text(PENDING_SQL),
)
# The claim's index: only due-able rows, in due order, so a claim reads `limit` index
# entries whatever the backlog. (With `state IN (…) ORDER BY next_attempt_at` on the index
# above, both databases sorted every queued row on every claim.) Queries that want it must
# spell the predicate with literals, as DUE_STATES_SQL does.
DUE_STATES_SQL = "state IN ('queued', 'retrying')"
Index(
    "ix_messages_due",
    messages.c.next_attempt_at,
    sqlite_where=text(DUE_STATES_SQL),
    postgresql_where=text(DUE_STATES_SQL),
)
Index(
    "ix_messages_destination_state",
    messages.c.destination_id,
    messages.c.state,
    postgresql_where=text(PENDING_SQL),
)
Index("ix_messages_project_updated", messages.c.project_id, messages.c.updated_at)
# The claim when projects at their bound are passed over (store/queue/_sqlite.py and
# _postgres.py, migrations 0011 and 0012): the projects with due messages, and each one's oldest.
Index(
    "ix_messages_due_project",
    messages.c.project_id,
    messages.c.next_attempt_at,
    sqlite_where=text(DUE_STATES_SQL),
    postgresql_where=text(DUE_STATES_SQL),
)
# Batching (migration 0013): each destination's unsealed messages in acceptance order (the
# seal reads only them), and a batch's members in line order (building and finishing it).
BATCHING_SQL = "state = 'batching'"
Index(
    "ix_messages_batching",
    messages.c.destination_id,
    messages.c.event_id,
    sqlite_where=text(BATCHING_SQL),
    postgresql_where=text(BATCHING_SQL),
)
IN_BATCH_SQL = "batch_leader IS NOT NULL"
Index(
    "ix_messages_batch",
    messages.c.batch_leader,
    messages.c.batch_line,
    sqlite_where=text(IN_BATCH_SQL),
    postgresql_where=text(IN_BATCH_SQL),
)

# Retention (migration 0008): delivered messages in delivery order, so each pruning batch
# reads only the rows it deletes (held and parked messages are not in it, however old).
DELIVERED_SQL = "state = 'delivered'"
Index(
    "ix_messages_delivered",
    messages.c.delivered_at,
    sqlite_where=text(DELIVERED_SQL),
    postgresql_where=text(DELIVERED_SQL),
)

# The deliveries list's keyset (migration 0007): newest first by event id (UUIDv7, in
# acceptance order, never changed), so a cursor is an index range and stable under inserts.
Index("ix_messages_project_event", messages.c.project_id, messages.c.event_id)

# Bodies larger than the inline limit, in ordered chunks: streamed in and out, never
# held whole in memory, and reachable from every node that shares the database.
message_chunks = Table(
    "message_chunks",
    metadata,
    Column("event_id", String(36), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("data", LargeBinary, nullable=False),
)

# One row per PUT attempt: who tried, when, and how it ended.
attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False),
    Column("worker", String(64), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("error", Text, nullable=True),
)
Index("ix_delivery_attempts_event", attempts.c.event_id)

# Multipart uploads s3dest could not abort (SPEC §8; a PutObject-only key may not): their
# parts stay in the customer's bucket until its AbortIncompleteMultipartUpload lifecycle
# rule removes them, so they are listed for the user with that rule.
orphaned_uploads = Table(
    "orphaned_uploads",
    metadata,
    Column("id", String(36), primary_key=True),
    Column(
        "destination_id",
        String(36),
        ForeignKey("destinations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("event_id", String(36), nullable=False),
    Column("bucket", String(63), nullable=False),
    Column("key", Text, nullable=False),
    Column("upload_id", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)
Index("ix_orphaned_uploads_destination", orphaned_uploads.c.destination_id)

# Notifications (migration 0008): a row while a destination's outage has been announced
# (destination.failing); the next successful write deletes it and announces
# destination.recovered. An update clears the destination's failing_since but not this:
# only a write shows that the destination works again, so one outage is one pair of events.
destination_alerts = Table(
    "destination_alerts",
    metadata,
    Column(
        "destination_id",
        String(36),
        ForeignKey("destinations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("project_id", String(36), nullable=False),
    Column("failing_since", Float, nullable=False),
)

# Webhook endpoints (migration 0008, SPEC §4 "Notifications"). The signing secret is
# encrypted like a destination's secret key (aad "webhook:<id>:secret"); `events` is a JSON
# array of the event types the endpoint receives.
webhooks = Table(
    "webhooks",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("project_id", String(36), ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("url", Text, nullable=False),
    Column("events", Text, nullable=False),
    Column("description", String(200), nullable=False, server_default=""),
    Column("secret_enc", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    # Revision 0014: the last UTC day (YYYY-MM-DD) whose summary.daily this endpoint was
    # given (store/summaries.py), NULL before the first; moved forward in the transaction
    # that writes the summary, so each (endpoint, day) gets one.
    Column("summary_day", String(10), nullable=True),
)
Index("ix_webhooks_project", webhooks.c.project_id)

# The outbox: one row per (endpoint, event), written in the transaction that made the
# transition, so an event is neither lost by a crash nor sent twice for one transition.
# `payload` is the exact JSON body that is signed and sent on every attempt; `id` is its
# webhook-id (receivers deduplicate on it).
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(36), primary_key=True),  # uuid7: ordered by time
    Column("webhook_id", String(36), ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    Column("project_id", String(36), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("state", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_expires_at", Float, nullable=True),
    Column("last_status", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("finished_at", Float, nullable=True),
)
WEBHOOK_PENDING_SQL = "state = 'pending'"
Index(
    "ix_webhook_deliveries_due",
    webhook_deliveries.c.next_attempt_at,
    sqlite_where=text(WEBHOOK_PENDING_SQL),
    postgresql_where=text(WEBHOOK_PENDING_SQL),
)
Index("ix_webhook_deliveries_webhook", webhook_deliveries.c.webhook_id, webhook_deliveries.c.id)
Index("ix_webhook_deliveries_finished", webhook_deliveries.c.finished_at)

# Idempotent ingest (migration 0007): a request's Idempotency-Key within its project, the
# SHA-256 of the body it came with, and the 202's body it got (NULL while the first
# request with that key is still being stored). Kept for the idempotency window.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column(
        "project_id", String(36), ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("key", String(255), primary_key=True),
    Column("request_sha256", String(64), nullable=False),
    Column("response", LargeBinary, nullable=True),
    Column("created_at", Float, nullable=False),
)
Index("ix_idempotency_keys_created", idempotency_keys.c.created_at)

# SQLite writes one transaction at a time, so a big batch written in one transaction made
# every other project's write wait for it (~0.4 s of CPU for 10,000 messages, seconds under
# load; issue 13, SPEC §7 "Fair share"). There, a batch larger than one short transaction
# (and a large body's chunks) is staged instead (migration 0011, store/staging.py): its rows
# go into `staged_messages` in short transactions, a one-row update of `ingest_batches`
# makes the whole batch durable at once, and short transactions then move the rows into
# `messages`. `staged_messages` has every column of `messages`, so the move is one
# INSERT … SELECT per transaction, all inside SQLite.
ingest_batches = Table(
    "ingest_batches",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("project_id", String(36), nullable=False),
    # Last written to while staging: an uncommitted batch this old lost its writer.
    Column("staged_at", Float, nullable=False),
    # Set by the one-row commit: from then on the batch is accepted, moved in whole even if
    # its writer dies (store.staging.recover).
    Column("committed_at", Float, nullable=True),
    # A large body's event id: its chunks are in message_chunks before its row exists.
    Column("event_id", String(36), nullable=True),
)

staged_messages = Table(
    "staged_messages",
    metadata,
    Column("batch_id", String(36), primary_key=True),
    Column("seq", Integer, primary_key=True),
    *(Column(c.name, c.type, nullable=c.nullable) for c in messages.columns),
)
