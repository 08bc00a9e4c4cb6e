"""The daily summary webhook event (`summary.daily`, SPEC §4, issue 16): once per UTC day,
for the day that just ended, each project with an endpoint subscribed to it gets one
delivery per such endpoint, saying per destination how many messages were delivered that
day and how many are parked and held now, and whether it is failing (with the diagnosis).

- Only the most recent completed day is ever due, and only to endpoints that existed when
  it ended: a process that was down at midnight sends that day's summary when it is back,
  never a backlog of days, and an endpoint added today waits for tonight's.
- Counting only reads, in short read transactions (SQLite's write lock is never held while
  a large project is counted): the day's deliveries hour by hour from
  `ix_messages_delivered`, what waits per destination from `ix_messages_destination_state`.
- Then each project's summaries are written in one short write transaction that moves
  `webhooks.summary_day` forward for the endpoints still behind and writes a delivery for
  exactly the rows it moved: processes racing on one database, and a process restarted
  the same day, write one summary per (endpoint, day).

Payloads name destinations (id, name, bucket, region) and counts, never a secret.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Engine, or_, select, text, update

from s3dest.store import outbox
from s3dest.store.destinations import list_destinations
from s3dest.store.engine import reading, transaction
from s3dest.store.tables import webhooks

# A day's summary is due this long after midnight, so that the transactions that were
# writing deliveries at midnight have committed before the day is counted.
SETTLE_SECONDS = 60.0
_DAY = 86400.0
_HOUR = 3600.0
_COUNTS = ("delivered", "parked", "held")

# The day's deliveries by destination, one hour at a time. The predicate is spelled with
# literals so both planners match the partial index; SQLite is told the index because it
# otherwise prefers ix_messages_claim (state, next_attempt_at) for `state = 'delivered'`,
# which reads every delivered row that retention keeps.
_DELIVERED = (
    "SELECT destination_id, count(*) AS n FROM messages{hint} "
    "WHERE state = 'delivered' AND delivered_at >= :start AND delivered_at < :end "
    "GROUP BY destination_id"
)
# What waits now, per destination of the project: index ranges of (destination_id, state),
# never the project's delivered history. On PostgreSQL the index leaves delivered rows out,
# which `state IN (...)` implies.
_WAITING_SQL = (
    "SELECT destination_id, state, count(*) AS n FROM messages "
    "WHERE destination_id IN (SELECT id FROM destinations WHERE project_id = :project) "
    "AND state IN ('held', 'parked') GROUP BY destination_id, state"
)


def counting_statements(dialect: str) -> tuple[str, str]:
    """The two counting queries as `dialect` runs them (their plans are tested)."""
    hint = " INDEXED BY ix_messages_delivered" if dialect == "sqlite" else ""
    return _DELIVERED.format(hint=hint), _WAITING_SQL


@dataclass(frozen=True, slots=True)
class UTCDay:
    iso: str  # YYYY-MM-DD
    start: float  # Unix seconds of its 00:00 UTC
    end: float  # and of the next day's


def last_completed_day(now: float) -> UTCDay:
    """The UTC day that ended most recently (once SETTLE_SECONDS have passed since)."""
    day = datetime.fromtimestamp(now - SETTLE_SECONDS, UTC).date() - timedelta(days=1)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
    return UTCDay(day.isoformat(), start, start + _DAY)


@dataclass(frozen=True, slots=True)
class Pending:
    """One project's summary of `day`, for the endpoints that have not had it."""

    project_id: str
    day: UTCDay
    webhook_ids: tuple[str, ...]
    data: dict[str, Any]


def _behind(day: UTCDay) -> Any:
    return or_(webhooks.c.summary_day.is_(None), webhooks.c.summary_day < day.iso)


def _due_endpoints(engine: Engine, day: UTCDay) -> dict[str, list[str]]:
    """project id → its subscribed endpoints that existed when `day` ended and have not had
    its summary. The endpoints table is small (20 a project at most); LIKE narrows it
    before the JSON is read."""
    with reading(engine) as conn:
        rows = conn.execute(
            select(webhooks.c.id, webhooks.c.project_id, webhooks.c.events)
            .where(
                webhooks.c.created_at < day.end,
                _behind(day),
                webhooks.c.events.like(f'%"{outbox.SUMMARY}"%'),
            )
            .order_by(webhooks.c.project_id, webhooks.c.id)
        ).all()
    due: dict[str, list[str]] = {}
    for r in rows:
        if outbox.SUMMARY in orjson.loads(r.events):
            due.setdefault(r.project_id, []).append(r.id)
    return due


def _delivered(engine: Engine, day: UTCDay) -> Counter[str]:
    """Messages delivered during `day`, by destination, all projects: one pass over the
    day's index entries, an hour per read transaction so that none is long."""
    sql = text(counting_statements(engine.dialect.name)[0])
    counts: Counter[str] = Counter()
    for hour in range(24):
        start = day.start + hour * _HOUR
        with reading(engine) as conn:
            for r in conn.execute(sql, {"start": start, "end": start + _HOUR}):
                counts[r.destination_id] += int(r.n)
    return counts


def _project_data(
    engine: Engine, project_id: str, day: UTCDay, delivered: Counter[str]
) -> dict[str, Any]:
    waiting: Counter[tuple[str, str]] = Counter()
    with reading(engine) as conn:
        for r in conn.execute(text(_WAITING_SQL), {"project": project_id}):
            waiting[(r.destination_id, r.state)] = int(r.n)
    described: list[dict[str, Any]] = []
    for d in list_destinations(engine, project_id):
        failing = d.status == "failing"  # the API's status: a disabled one is not failing
        described.append(
            {
                "id": d.id,
                "name": d.name,
                "bucket": d.bucket,
                "region": d.region,
                "delivered": delivered[d.id],
                "parked": waiting[(d.id, "parked")],
                "held": waiting[(d.id, "held")],
                "failing": failing,
                "diagnosis": d.diagnosis if failing else None,
            }
        )
    return {
        "day": day.iso,
        "projectId": project_id,
        "destinations": described,
        "totals": {k: sum(d[k] for d in described) for k in _COUNTS},
    }


def pending(engine: Engine, day: UTCDay) -> Iterator[Pending]:
    """Each project's summary of `day` that some subscribed endpoint has not had, counted
    in read transactions only. Nothing is counted when no endpoint is due."""
    due = _due_endpoints(engine, day)
    if not due:
        return
    delivered = _delivered(engine, day)
    for project_id, webhook_ids in due.items():
        yield Pending(
            project_id, day, tuple(webhook_ids), _project_data(engine, project_id, day, delivered)
        )


def enqueue(engine: Engine, summary: Pending, now: float) -> int:
    """Write `summary` to the outbox of each of its endpoints still behind its day, in one
    short transaction; returns how many. Each endpoint's row is moved to the day by a
    conditional update and gets a delivery only if this transaction moved it: of two
    processes, the second waits for the first's row lock (PostgreSQL) or write lock
    (SQLite) and then finds the row moved. Rows are updated in id order, so two such
    transactions never wait for each other crosswise (a deadlock)."""
    day = summary.day
    with transaction(engine) as conn:
        moved = [
            webhook_id
            for webhook_id in sorted(summary.webhook_ids)
            if conn.execute(
                update(webhooks)
                .where(
                    webhooks.c.id == webhook_id,
                    webhooks.c.project_id == summary.project_id,
                    _behind(day),
                )
                .values(summary_day=day.iso)
            ).rowcount
        ]
        return outbox.insert_deliveries(
            conn,
            project_id=summary.project_id,
            event_type=outbox.SUMMARY,
            webhook_ids=moved,
            body=outbox.payload(outbox.SUMMARY, summary.data, now),
            now=now,
        )


def enqueue_daily(engine: Engine, now: float) -> int:
    """Write the summaries of the most recent completed UTC day (as of `now`) that are due;
    returns how many deliveries were written (0 when every endpoint has had it)."""
    day = last_completed_day(now)
    return sum(enqueue(engine, summary, now) for summary in pending(engine, day))
