"""Key templates checked and previewed against a destination's real messages too.

The samples of `s3dest.keys` cannot know a customer's own fields; the messages s3dest
still holds for the destination (or, for a new one, for the project) can. Both the save
(update) and the live preview use them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from s3dest.errors import MessageDeliveryError
from s3dest.keys import key_context, preview_key
from s3dest.keys.lint import RecentMessage, lint_key_template
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
