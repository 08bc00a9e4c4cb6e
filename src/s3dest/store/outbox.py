"""Notifications into the outbox (SPEC §4), written in the transaction of the transition
they announce: a destination turning failing (`hold_destination`), working again (the next
successful write, `healthy`), a message parked (`finish`). A crash either keeps the
transition and its events or neither, and a transition is written once, so each endpoint
gets one delivery per transition (`s3dest.notifications.dispatch` sends them).

The daily summary (`summary.daily`) is not a transition: store.summaries writes it once per
endpoint and UTC day, through `insert_deliveries`.

Payloads name what happened and where, never a secret: a destination's id, name, bucket
and region, the diagnosis the API shows, a message's event id and park reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, delete, insert, select

from s3dest.messages import uuid7
from s3dest.store.tables import destination_alerts, destinations, messages, webhook_deliveries
from s3dest.store.tables import webhooks as webhooks_table

FAILING = "destination.failing"
RECOVERED = "destination.recovered"
PARKED = "message.parked"
SUMMARY = "summary.daily"  # once a UTC day, by store.summaries, not by a transition
TEST = "webhook.test"  # sent by the endpoint's test only, never stored
EVENT_TYPES: tuple[str, ...] = (FAILING, RECOVERED, PARKED, SUMMARY)
# What an endpoint created without `events` gets: the changes. The summary is asked for.
DEFAULT_EVENTS: tuple[str, ...] = (FAILING, RECOVERED, PARKED)
PENDING = "pending"


def iso(ts: float) -> str:
    """RFC 3339 in UTC with milliseconds, e.g. 2026-12-01T19:40:00.123Z."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def payload(event_type: str, data: Mapping[str, Any], now: float) -> str:
    """The body Standard Webhooks describes: type, timestamp, data."""
    return orjson.dumps({"type": event_type, "timestamp": iso(now), "data": data}).decode()


def emit(
    conn: Connection, *, project_id: str, event_type: str, data: Mapping[str, Any], now: float
) -> int:
    """One pending delivery per endpoint of the project that takes `event_type`."""
    hooks = conn.execute(
        select(webhooks_table.c.id, webhooks_table.c.events).where(
            webhooks_table.c.project_id == project_id
        )
    ).all()
    targets = [h.id for h in hooks if event_type in orjson.loads(h.events)]
    if not targets:  # most projects have no endpoint: no body to build
        return 0
    return insert_deliveries(
        conn,
        project_id=project_id,
        event_type=event_type,
        webhook_ids=targets,
        body=payload(event_type, data, now),
        now=now,
    )


def insert_deliveries(
    conn: Connection,
    *,
    project_id: str,
    event_type: str,
    webhook_ids: Sequence[str],
    body: str,
    now: float,
) -> int:
    """One pending delivery of `body` to each of `webhook_ids`, due now."""
    if not webhook_ids:
        return 0
    conn.execute(
        insert(webhook_deliveries),
        [
            {
                "id": uuid7(),
                "webhook_id": webhook_id,
                "project_id": project_id,
                "event_type": event_type,
                "payload": body,
                "state": PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for webhook_id in webhook_ids
        ],
    )
    return len(webhook_ids)


def _destination(conn: Connection, destination_id: str) -> Any:
    return conn.execute(
        select(
            destinations.c.id,
            destinations.c.project_id,
            destinations.c.name,
            destinations.c.bucket,
            destinations.c.region,
        ).where(destinations.c.id == destination_id)
    ).first()


def _described(row: Any) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "bucket": row.bucket, "region": row.region}


def destination_failing(
    conn: Connection, destination_id: str, *, diagnosis: str, code: str | None, now: float
) -> None:
    """The destination was just marked failing: announce it, unless this outage was
    announced already (an update cleared the failure but nothing has written since)."""
    if conn.execute(
        select(destination_alerts.c.destination_id).where(
            destination_alerts.c.destination_id == destination_id
        )
    ).first():
        return
    row = _destination(conn, destination_id)
    if row is None:
        return
    conn.execute(
        insert(destination_alerts).values(
            destination_id=destination_id, project_id=row.project_id, failing_since=now
        )
    )
    emit(
        conn,
        project_id=row.project_id,
        event_type=FAILING,
        data={
            "projectId": row.project_id,
            "destination": _described(row),
            "diagnosis": diagnosis,
            "errorCode": code,
            "failingSince": iso(now),
        },
        now=now,
    )


def destination_wrote(conn: Connection, destination_id: str, now: float) -> None:
    """A write to the destination succeeded: if its outage was announced, announce that it
    is over. One primary-key delete that matches nothing when there was no outage."""
    ended = conn.execute(
        delete(destination_alerts)
        .where(destination_alerts.c.destination_id == destination_id)
        .returning(destination_alerts.c.project_id, destination_alerts.c.failing_since)
    ).first()
    if ended is None:
        return
    row = _destination(conn, destination_id)
    if row is None:
        return
    emit(
        conn,
        project_id=row.project_id,
        event_type=RECOVERED,
        data={
            "projectId": row.project_id,
            "destination": _described(row),
            "failingSince": iso(ended.failing_since),
            "recoveredAt": iso(now),
        },
        now=now,
    )


def messages_parked(conn: Connection, event_ids: Sequence[str], now: float) -> None:
    """Announce the messages of `event_ids` that this transaction has just parked: their
    row says parked as of `now` (the time the transaction wrote; an earlier park or
    another worker's has another)."""
    if not event_ids:
        return
    rows = conn.execute(
        select(
            messages.c.event_id,
            messages.c.project_id,
            messages.c.destination_id,
            messages.c.attempts,
            messages.c.last_error,
            destinations.c.name,
        )
        .select_from(
            messages.outerjoin(destinations, destinations.c.id == messages.c.destination_id)
        )
        .where(
            messages.c.event_id.in_(list(event_ids)),
            messages.c.state == "parked",
            messages.c.updated_at == now,
        )
    ).all()
    for r in rows:
        emit(
            conn,
            project_id=r.project_id,
            event_type=PARKED,
            data={
                "projectId": r.project_id,
                "eventId": r.event_id,
                "destination": {"id": r.destination_id, "name": r.name},
                "reason": r.last_error,
                "attempts": r.attempts,
                "parkedAt": iso(now),
            },
            now=now,
        )
