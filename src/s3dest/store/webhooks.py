"""Webhook endpoints (a project's, by id) and the delivery of their outbox rows.

Outbox rows are claimed with a lease, as messages are: on PostgreSQL with SKIP LOCKED, so
several processes send different rows; a process that dies mid-send leaves its rows to
be claimed again when the lease expires (the receiver may then see a webhook-id twice,
which Standard Webhooks tells it to deduplicate on). Every outcome is fenced on the lease.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, delete, func, insert, select, text, update

from s3dest.errors import NotFound
from s3dest.store.engine import reading, transaction
from s3dest.store.outbox import PENDING
from s3dest.store.tables import WEBHOOK_PENDING_SQL, webhook_deliveries, webhooks

DELIVERED = "delivered"
FAILED = "failed"  # given up after the retry window
MAX_PER_PROJECT = 20  # endpoints a project may register


@dataclass(frozen=True, slots=True)
class WebhookRow:
    id: str
    project_id: str
    url: str
    events: tuple[str, ...]
    description: str
    secret_enc: str
    created_at: float


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    id: str
    webhook_id: str
    event_type: str
    state: str
    attempts: int
    next_attempt_at: float
    last_status: int | None
    last_error: str | None
    created_at: float
    finished_at: float | None


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """A claimed outbox row with what sending it needs."""

    id: str
    webhook_id: str
    project_id: str
    url: str
    secret_enc: str
    payload: str
    attempts: int
    created_at: float


def _webhook(r: Any) -> WebhookRow:
    return WebhookRow(
        id=r.id,
        project_id=r.project_id,
        url=r.url,
        events=tuple(orjson.loads(r.events)),
        description=r.description,
        secret_enc=r.secret_enc,
        created_at=r.created_at,
    )


def count_webhooks(engine: Engine, project_id: str) -> int:
    with reading(engine) as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(webhooks)
                .where(webhooks.c.project_id == project_id)
            ).scalar_one()
        )


def insert_webhook(
    engine: Engine,
    *,
    webhook_id: str,
    project_id: str,
    url: str,
    events: Sequence[str],
    description: str,
    secret_enc: str,
) -> WebhookRow:
    now = time.time()
    with transaction(engine) as conn:
        conn.execute(
            insert(webhooks).values(
                id=webhook_id,
                project_id=project_id,
                url=url,
                events=orjson.dumps(list(events)).decode(),
                description=description,
                secret_enc=secret_enc,
                created_at=now,
            )
        )
    return WebhookRow(webhook_id, project_id, url, tuple(events), description, secret_enc, now)


def list_webhooks(engine: Engine, project_id: str) -> list[WebhookRow]:
    with reading(engine) as conn:
        rows = conn.execute(
            select(webhooks)
            .where(webhooks.c.project_id == project_id)
            .order_by(webhooks.c.created_at)
        ).all()
    return [_webhook(r) for r in rows]


def _project_webhook(conn: Connection, project_id: str, webhook_id: str) -> Any:
    """The project's endpoint row (NotFound for another project's: ids are not secrets)."""
    row = conn.execute(
        select(webhooks).where(webhooks.c.id == webhook_id, webhooks.c.project_id == project_id)
    ).first()
    if row is None:
        raise NotFound(f"no webhook {webhook_id!r} in this project")
    return row


def get_webhook(engine: Engine, project_id: str, webhook_id: str) -> WebhookRow:
    """The project's endpoint (NotFound for another project's: ids are not secrets)."""
    with reading(engine) as conn:
        return _webhook(_project_webhook(conn, project_id, webhook_id))


def delete_webhook(engine: Engine, project_id: str, webhook_id: str) -> WebhookRow:
    """Remove the endpoint with its outbox rows (pending ones are not sent)."""
    with transaction(engine) as conn:
        row = _project_webhook(conn, project_id, webhook_id)
        conn.execute(delete(webhook_deliveries).where(webhook_deliveries.c.webhook_id == row.id))
        conn.execute(delete(webhooks).where(webhooks.c.id == row.id))
    return _webhook(row)


def recent_deliveries(
    engine: Engine, project_id: str, webhook_id: str, limit: int = 20
) -> list[DeliveryRow]:
    """The endpoint's latest deliveries, newest first."""
    with reading(engine) as conn:
        rows = conn.execute(
            select(webhook_deliveries)
            .where(
                webhook_deliveries.c.webhook_id == webhook_id,
                webhook_deliveries.c.project_id == project_id,
            )
            .order_by(webhook_deliveries.c.id.desc())
            .limit(limit)
        ).all()
    return [
        DeliveryRow(
            id=r.id,
            webhook_id=r.webhook_id,
            event_type=r.event_type,
            state=r.state,
            attempts=r.attempts,
            next_attempt_at=r.next_attempt_at,
            last_status=r.last_status,
            last_error=r.last_error,
            created_at=r.created_at,
            finished_at=r.finished_at,
        )
        for r in rows
    ]


# The predicate as literals, so both planners use the partial index ix_webhook_deliveries_due.
_DUE = (
    f"SELECT id FROM webhook_deliveries WHERE {WEBHOOK_PENDING_SQL} "
    "AND next_attempt_at <= :now ORDER BY next_attempt_at LIMIT :limit"
)


def any_due(engine: Engine) -> bool:
    """Whether a delivery is due: a read (no write lock), so idle polling costs little."""
    with reading(engine) as conn:
        return conn.execute(text(_DUE), {"now": time.time(), "limit": 1}).first() is not None


def claim_due(engine: Engine, owner: str, *, limit: int, lease_seconds: float) -> list[DueDelivery]:
    """Lease up to `limit` due deliveries to `owner`, oldest due first."""
    now = time.time()
    with transaction(engine) as conn:
        due = _DUE + (" FOR UPDATE SKIP LOCKED" if conn.dialect.name == "postgresql" else "")
        ids = list(conn.execute(text(due), {"now": now, "limit": limit}).scalars())
        # Leases that expired (their process died mid-send) are due again: they are
        # pending with next_attempt_at in the past, and their old owner's fence fails.
        if not ids:
            return []
        conn.execute(
            update(webhook_deliveries)
            .where(webhook_deliveries.c.id.in_(ids))
            .values(
                lease_owner=owner,
                lease_expires_at=now + lease_seconds,
                next_attempt_at=now + lease_seconds,
            )
        )
        rows = conn.execute(
            select(
                webhook_deliveries.c.id,
                webhook_deliveries.c.webhook_id,
                webhook_deliveries.c.project_id,
                webhook_deliveries.c.payload,
                webhook_deliveries.c.attempts,
                webhook_deliveries.c.created_at,
                webhooks.c.url,
                webhooks.c.secret_enc,
            )
            .select_from(
                webhook_deliveries.join(webhooks, webhooks.c.id == webhook_deliveries.c.webhook_id)
            )
            .where(webhook_deliveries.c.id.in_(ids))
            .order_by(webhook_deliveries.c.id)
        ).all()
    return [
        DueDelivery(
            id=r.id,
            webhook_id=r.webhook_id,
            project_id=r.project_id,
            url=r.url,
            secret_enc=r.secret_enc,
            payload=r.payload,
            attempts=r.attempts,
            created_at=r.created_at,
        )
        for r in rows
    ]


def record_attempt(
    engine: Engine,
    owner: str,
    delivery_id: str,
    *,
    status: int | None,
    error: str | None,
    next_attempt_at: float | None,
    delivered: bool,
) -> bool:
    """Record one attempt: delivered, retried at `next_attempt_at`, or given up (neither).
    False when `owner` had lost the lease (another process took the row over)."""
    now = time.time()
    values: dict[str, object] = {
        "attempts": webhook_deliveries.c.attempts + 1,
        "lease_owner": None,
        "lease_expires_at": None,
        "last_status": status,
        "last_error": error[:500] if error else None,
    }
    if delivered:
        values.update(state=DELIVERED, finished_at=now)
    elif next_attempt_at is not None:
        values.update(next_attempt_at=next_attempt_at)
    else:
        values.update(state=FAILED, finished_at=now)
    with transaction(engine) as conn:
        result = conn.execute(
            update(webhook_deliveries)
            .where(
                webhook_deliveries.c.id == delivery_id,
                webhook_deliveries.c.lease_owner == owner,
                webhook_deliveries.c.state == PENDING,
            )
            .values(**values)
        )
    return bool(result.rowcount)
