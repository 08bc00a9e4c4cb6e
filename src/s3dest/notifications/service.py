"""A project's webhook endpoints: create (the signing secret is shown once, then kept
encrypted like destinations' secrets), list, delete, test; each change audited. The REST
API (/v1/webhooks) and the dashboard's Webhooks page both call these."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine

from s3dest.access.audit import Actor, record
from s3dest.destinations.secrets import SecretBox
from s3dest.errors import Conflict, InvalidInput
from s3dest.messages import uuid7
from s3dest.notifications import sender, signing
from s3dest.s3 import egress, lookups
from s3dest.store import outbox
from s3dest.store import webhooks as store
from s3dest.store.engine import atomic
from s3dest.store.webhooks import DeliveryRow, WebhookRow

EVENT_TYPES = outbox.EVENT_TYPES
DEFAULT_EVENTS = outbox.DEFAULT_EVENTS
MAX_URL_CHARS = 2048
MAX_DESCRIPTION_CHARS = 200


@dataclass(frozen=True, slots=True)
class Created:
    webhook: WebhookRow
    secret: str  # shown this once


@dataclass(frozen=True, slots=True)
class Tested:
    ok: bool
    status: int | None
    error: str | None


def _bad(field: str, why: str) -> InvalidInput:
    return InvalidInput(f"invalid webhook: {why}", {field: why})


def check_url(value: Any, project_id: str) -> str:
    """An http(s) URL whose host the endpoint policy admits (resolved now, on the lookups'
    own threads within the project's bounds, and again before every delivery)."""
    example = "e.g. 'https://hooks.example.com/s3dest'"
    if not isinstance(value, str) or not value.strip():
        raise _bad("url", f"give the endpoint's URL, {example}")
    url = value.strip()
    if len(url) > MAX_URL_CHARS or any(c.isspace() for c in url):
        raise _bad("url", f"must be one URL of at most {MAX_URL_CHARS} characters, {example}")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise _bad("url", f"must start with https:// (or http://), {example}")
    if "@" in parts.netloc:
        raise _bad("url", "must not contain credentials (user:password@)")
    if parts.fragment:
        raise _bad("url", "must not have a #fragment")
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        raise _bad("url", "has an invalid port (1–65535)") from None
    if not parts.hostname:
        raise _bad("url", f"must name a host, {example}")
    try:
        lookups.current().check_endpoint(project_id, parts.hostname, port)
    except egress.EndpointUnresolvable as unresolvable:
        reason = unresolvable.reason
        raise _bad("url", f"cannot be checked: {reason}; check the host name") from None
    except egress.EndpointRefused as refused:
        raise _bad(
            "url",
            f"is not allowed: {refused.reason}. s3dest does not call loopback, private, "
            "link-local or cloud metadata addresses; use a public address, or ask the "
            f"operator to allow the host with {egress.SETTING}",
        ) from None
    return url


def check_events(value: Any) -> tuple[str, ...]:
    if value is None:
        return DEFAULT_EVENTS
    if not isinstance(value, list | tuple) or not value:
        raise _bad("events", "give a non-empty list of " + ", ".join(EVENT_TYPES))
    unknown = [v for v in value if v not in EVENT_TYPES]
    if unknown:
        raise _bad("events", f"unknown event type {unknown[0]!r}; one of " + ", ".join(EVENT_TYPES))
    return tuple(dict.fromkeys(value))


def create(
    engine: Engine,
    box: SecretBox,
    *,
    project_id: str,
    url: Any,
    events: Any = None,
    description: Any = "",
    actor: Actor,
) -> Created:
    checked_url = check_url(url, project_id)
    checked_events = check_events(events)
    text = "" if description is None else description
    if not isinstance(text, str) or len(text) > MAX_DESCRIPTION_CHARS:
        raise _bad("description", f"must be text of at most {MAX_DESCRIPTION_CHARS} characters")
    if store.count_webhooks(engine, project_id) >= store.MAX_PER_PROJECT:
        raise Conflict(f"a project has at most {store.MAX_PER_PROJECT} webhooks; delete one first")
    webhook_id = uuid7()
    secret = signing.new_secret()
    secret_enc = box.encrypt(secret, aad=signing.aad(webhook_id))
    with atomic(engine):
        row = store.insert_webhook(
            engine,
            webhook_id=webhook_id,
            project_id=project_id,
            url=checked_url,
            events=checked_events,
            description=text.strip(),
            secret_enc=secret_enc,
        )
        record(
            engine,
            actor,
            project_id=project_id,
            action="webhook.created",
            target=f"webhook:{webhook_id}",
            changes={"url": checked_url, "events": list(checked_events), "secret": {"to": "***"}},
        )
    return Created(row, secret)


def list_(engine: Engine, *, project_id: str) -> list[WebhookRow]:
    return store.list_webhooks(engine, project_id)


def get(engine: Engine, *, project_id: str, webhook_id: str) -> WebhookRow:
    return store.get_webhook(engine, project_id, webhook_id)


def deliveries(
    engine: Engine, *, project_id: str, webhook_id: str, limit: int = 20
) -> list[DeliveryRow]:
    store.get_webhook(engine, project_id, webhook_id)  # NotFound for another project's
    return store.recent_deliveries(engine, project_id, webhook_id, limit)


def delete(engine: Engine, *, project_id: str, webhook_id: str, actor: Actor) -> WebhookRow:
    with atomic(engine):
        row = store.delete_webhook(engine, project_id, webhook_id)
        record(
            engine,
            actor,
            project_id=project_id,
            action="webhook.deleted",
            target=f"webhook:{row.id}",
            changes={"url": row.url},
        )
    return row


def test(engine: Engine, box: SecretBox, *, project_id: str, webhook_id: str) -> Tested:
    """POST one signed `webhook.test` event now and say how the endpoint answered (one
    attempt, nothing retried or stored)."""
    row = store.get_webhook(engine, project_id, webhook_id)
    secret = box.decrypt(row.secret_enc, aad=signing.aad(row.id))
    message_id = uuid7()
    body = outbox.payload(
        outbox.TEST,
        {"projectId": project_id, "webhookId": row.id, "note": "a test from s3dest"},
        time.time(),
    )
    sent = sender.post(row.url, body, signing.headers(secret, message_id, body))
    return Tested(ok=sent.ok, status=sent.status, error=sent.error)


def public_webhook(row: WebhookRow) -> dict[str, Any]:
    """An endpoint as the API shows it: never its secret."""
    return {
        "id": row.id,
        "url": row.url,
        "events": list(row.events),
        "description": row.description,
        "createdAt": row.created_at,
    }


def public_delivery(row: DeliveryRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "type": row.event_type,
        "state": row.state,
        "attempts": row.attempts,
        "lastStatus": row.last_status,
        "lastError": row.last_error,
        "createdAt": row.created_at,
        "nextAttemptAt": row.next_attempt_at if row.state == "pending" else None,
        "finishedAt": row.finished_at,
    }
