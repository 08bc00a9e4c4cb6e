"""Key templates checked and previewed against a destination's real messages too.

The samples of `s3dest.keys` cannot know a customer's own fields; the messages s3dest
still holds for the destination (or, for a new one, for the project) can. Both the save
(update) and the live preview use them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Engine

from s3dest.errors import KeyRenderError, KeyTemplateInvalid, MessageDeliveryError
from s3dest.keys import KeyTemplate, key_context, preview_key
from s3dest.keys.lint import RecentMessage, lint_key_template
from s3dest.messages import metadata_text
from s3dest.s3.request import StoredMessage, event_metadata, message_data
from s3dest.store import destinations as store
from s3dest.store import queue

RECENT = 5


def recent_messages(
    engine: Engine, *, project_id: str, destination_id: str | None, limit: int = RECENT
) -> list[RecentMessage]:
    """The key contexts of the latest messages whose body is still stored, newest first."""
    out: list[RecentMessage] = []
    for body in queue.recent_bodies(engine, project_id, destination_id=destination_id, limit=limit):
        stored = StoredMessage(
            event_id=body.event_id,
            project_id=project_id,
            destination_id=body.destination_id,
            event_time_ns=body.event_time_ns,
            connection_id=body.connection_id,
            topic=body.topic,
            body=body.body,
            envelope=body.envelope,
        )
        try:
            data = message_data(stored)
        except MessageDeliveryError:
            continue  # unreadable: the worker parks it with the reason; nothing to preview
        context = key_context(event_metadata(stored, data), body.event_time_ns, data)
        out.append(RecentMessage(body.event_id, context))
    return out


def lint_for(engine: Engine, *, project_id: str, destination_id: str) -> Any:
    """The key template checker of an existing destination: samples and its messages."""

    def check(template: str) -> list[str]:
        recent = recent_messages(engine, project_id=project_id, destination_id=destination_id)
        return lint_key_template(template, recent)

    return check


def preview(
    engine: Engine,
    *,
    project_id: str,
    template: str | None,
    message: dict[str, Any] | None = None,
    destination: str | None = None,
) -> dict[str, Any]:
    """POST /v1/key-templates/preview and the dashboard's: the samples, the given message,
    and the recent messages of `destination` (id or name; None: of the project)."""
    destination_id = (
        store.get_destination(engine, project_id, destination).id if destination else None
    )
    recent = (
        recent_messages(engine, project_id=project_id, destination_id=destination_id)
        if message is None
        else []
    )
    return preview_key(template, message, project_id=project_id, recent=recent)


#: How much of a body the message page shows (the object in the bucket has it all).
BODY_PREVIEW_BYTES = 4096


@dataclass(frozen=True)
class MessagePreview:
    """What the message page shows of a stored message: a few data fields, its body (cut
    at BODY_PREVIEW_BYTES) and the key the destination's current template gives it."""

    installation_id: str | None
    operation_id: str | None
    body: str | None  # pretty JSON, possibly cut; None when no longer stored
    body_cut: int  # bytes not shown
    chunked: bool
    key: str | None
    key_error: str | None


def message_preview(
    engine: Engine, *, project_id: str, event_id: str, template: str | None
) -> MessagePreview | None:
    """None when s3dest no longer holds the body (delivered, and not retained)."""
    body = queue.stored_body(engine, project_id, event_id)
    if body is None:
        return None
    stored = StoredMessage(
        event_id=body.event_id,
        project_id=project_id,
        destination_id=body.destination_id,
        event_time_ns=body.event_time_ns,
        connection_id=body.connection_id,
        topic=body.topic,
        body=body.body,
        envelope=body.envelope,
    )
    try:
        data = message_data(stored)
    except MessageDeliveryError as exc:
        return MessagePreview(None, None, None, 0, body.body is None, None, exc.message)
    shown = orjson.dumps({"data": data}, option=orjson.OPT_INDENT_2)
    cut = max(len(shown) - BODY_PREVIEW_BYTES, 0)
    text = shown[:BODY_PREVIEW_BYTES].decode("utf-8", "ignore")
    key: str | None = None
    error: str | None = None
    try:
        key = KeyTemplate(template).render_message(
            event_metadata(stored, data), body.event_time_ns, data
        )
    except KeyRenderError as exc:
        error = exc.message  # with its hint: "(data.x is missing)"
    except KeyTemplateInvalid as exc:
        error = exc.message
    return MessagePreview(
        installation_id=metadata_text(data.get("installationId")) or None,
        operation_id=metadata_text(data.get("operationId")) or None,
        body=text,
        body_cut=cut,
        chunked=body.body is None,
        key=key,
        key_error=error,
    )
