"""The durable queue: enqueue, claim with a lease, ack, retry, hold, park, replay.

States (`MessageState`): queued → delivering → delivered; delivering → retrying
(transient) → delivering…; delivering → held (destination failing) → queued when it is
fixed or probed; delivering → parked (message error) → queued on replay.

- `operations`: the broker's operations — enqueue, claim with a lease, extend, release,
  reap, finish (the SQL of the hot ones in `_sqlite` and `_postgres`);
- `health`: hold a failing destination's messages, probe it, resume it;
- `records`: typed delivery records, counts, the queue's depth;
- `bodies`: the bodies still stored, for key previews and the message page;
- `replay`: parked messages queued again;
- `timeline`: delivered, latency and failed attempts over time, for charts;
- `search`: records searched and paged by keyset, delivered messages re-delivered.

``from s3dest.store import queue; queue.claim(...)``: the public names are all here.
"""

from __future__ import annotations

from s3dest.store.queue.batches import (
    SEAL_ROUND_SECONDS,
    BatchLine,
    batch_lines,
    batch_size,
    seal_due,
)
from s3dest.store.queue.bodies import StoredBody, recent_bodies, stored_body
from s3dest.store.queue.health import (
    hold_destination,
    hold_pending,
    mark_healthy,
    mark_verified,
    release_probes,
)
from s3dest.store.queue.operations import (
    Claimed,
    Outcome,
    claim,
    enqueue,
    enqueue_columns,
    extend_leases,
    finish,
    read_chunks,
    reap_expired_leases,
    release,
    row_values,
    sqlite_insert_statement,
    write_chunks,
)
from s3dest.store.queue.records import (
    Attempt,
    DeliveryRecord,
    counts_by_state,
    get_record,
    list_records,
    pending_counts,
    queue_depth,
)
from s3dest.store.queue.replay import replay_destination, replay_message
from s3dest.store.queue.search import (
    DeliveryFilter,
    Redelivery,
    count_by_state,
    redeliver,
    search_records,
)
from s3dest.store.queue.states import CLAIMABLE, PENDING, STATES, WAITING, MessageState
from s3dest.store.queue.timeline import Activity, activity

__all__ = [
    "CLAIMABLE",
    "PENDING",
    "SEAL_ROUND_SECONDS",
    "STATES",
    "WAITING",
    "Activity",
    "Attempt",
    "BatchLine",
    "Claimed",
    "DeliveryFilter",
    "DeliveryRecord",
    "MessageState",
    "Outcome",
    "Redelivery",
    "StoredBody",
    "activity",
    "batch_lines",
    "batch_size",
    "claim",
    "count_by_state",
    "counts_by_state",
    "enqueue",
    "enqueue_columns",
    "extend_leases",
    "finish",
    "get_record",
    "hold_destination",
    "hold_pending",
    "list_records",
    "mark_healthy",
    "mark_verified",
    "pending_counts",
    "queue_depth",
    "read_chunks",
    "reap_expired_leases",
    "recent_bodies",
    "redeliver",
    "release",
    "release_probes",
    "replay_destination",
    "replay_message",
    "row_values",
    "seal_due",
    "search_records",
    "sqlite_insert_statement",
    "stored_body",
    "write_chunks",
]
