"""The checks of a message that do not need its `result`: projectId, routing, metadata.

Shared by small messages (`s3dest.ingest.normalise`) and large streamed ones
(`s3dest.ingest.large`), with the row each accepted message is queued as.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from s3dest.errors import ManifestInvalid
from s3dest.manifest import Manifest, parse_manifest
from s3dest.messages import EventMetadata, IncomingMessage, new_stamp
from s3dest.s3.metadata import metadata_problems, object_metadata_unchecked
from s3dest.store.ingest import RoutingTarget, load_routing
from s3dest.store.queue.states import MessageState


@dataclass
class ProjectView:
    """What routing needs to know about a project, read once per batch."""

    by_ref: dict[str, RoutingTarget]
    manifest: Manifest | None
    # metadata_problems() of the object metadata, for the messages of this batch (they
    # mostly share it): `_metadata(...)` (frozen, hashable) -> problems.
    metadata_checked: dict[EventMetadata, dict[str, str]] = field(default_factory=dict)


_manifest_cache: dict[str, Manifest] = {}


def _parse_cached(source: str) -> Manifest | None:
    digest = hashlib.sha256(source.encode()).hexdigest()
    manifest = _manifest_cache.get(digest)
    if manifest is None:
        try:
            manifest = parse_manifest(source)
        except ManifestInvalid:
            return None
        if len(_manifest_cache) > 128:
            _manifest_cache.clear()
        _manifest_cache[digest] = manifest
    return manifest


def load_project_view(engine: Engine, project_id: str) -> ProjectView:
    by_ref: dict[str, RoutingTarget] = {}
    targets, source = load_routing(engine, project_id)
    for d in targets:
        by_ref[d.id] = d
        by_ref[d.name] = d
    return ProjectView(by_ref=by_ref, manifest=_parse_cached(source) if source else None)


@dataclass(frozen=True, slots=True)
class Routed:
    destination: RoutingTarget | None
    selected: frozenset[str] | None  # the manifest's field selection for this object


def check_envelope(
    project_id: str, message: IncomingMessage, view: ProjectView, p: str, fields: dict[str, str]
) -> Routed:
    """Checks that do not need `result`: projectId, routing, object metadata.

    Shared by small messages (`prepare`) and large streamed ones (`prepare_large`);
    problems are added to `fields`, keyed with the prefix `p` (``messages[3].``).
    """
    if message.projectId is not None and message.projectId != project_id:
        fields[f"{p}projectId"] = (
            f"projectId is set from your API key's project; omit it or send {project_id!r}"
        )
    route = None
    if message.integration and view.manifest is not None:
        route = view.manifest.route(message.integration, message.action, message.objectName)
    destination: RoutingTarget | None = None
    if message.destination:
        destination = view.by_ref.get(message.destination)
        if destination is None:
            fields[f"{p}destination"] = (
                f"no destination {message.destination!r} in this project; create it first "
                "(POST /v1/destinations) or use an existing name or id"
            )
    elif message.integration:
        if view.manifest is None:
            fields[f"{p}integration"] = (
                "this project has no amp.yaml yet, so integration "
                f"{message.integration!r} cannot be routed; PUT /v1/manifest first or send "
                "`destination`"
            )
        elif route is None:
            fields[f"{p}objectName"] = (
                f"amp.yaml has no {message.action} object {message.objectName!r} in "
                f"integration {message.integration!r}; add it to the manifest or send "
                "`destination`"
            )
        else:
            destination = view.by_ref.get(route.destination)
            if destination is None:
                fields[f"{p}integration"] = (
                    f"amp.yaml routes this message to destination {route.destination!r}, which "
                    "does not exist; create it"
                )
    else:
        fields[f"{p}destination"] = (
            "say where the message goes: `destination` (name or id), or `integration` with "
            "an amp.yaml that routes its objectName"
        )
    meta = _metadata(project_id, message, destination.id if destination else "")
    problems = view.metadata_checked.get(meta)
    if problems is None:
        problems = metadata_problems(_s3_headers(meta))
        view.metadata_checked[meta] = problems
    for name, problem in problems.items():
        fields[f"{p}{_FIELD_OF_HEADER.get(name, name)}"] = problem
    selected = route.selected_fields if route is not None else None
    return Routed(destination=destination, selected=selected or None)


def queue_row(
    project_id: str,
    message: IncomingMessage,
    destination: RoutingTarget,
    *,
    body: bytes | None,
    body_size: int,
    envelope: bytes | None = None,
    now_ns: int | None = None,
) -> dict[str, Any]:
    stamp = new_stamp(now_ns)
    now = time.time()
    return {
        "event_id": stamp.event_id,
        "project_id": project_id,
        "destination_id": destination.id,
        "state": _first_state(destination, chunked=body is None),
        "event_time_ns": stamp.event_time_ns,
        "accepted_at": now,
        "connection_id": message.connectionId or "",
        "topic": message.topic or "",
        "object_name": message.objectName,
        "installation_id": message.installationId,
        "body": body,
        "body_size": body_size,
        "chunked": body is None,
        "envelope": envelope,
        "attempts": 0,
        "next_attempt_at": now,
        "updated_at": now,
    }


def _first_state(destination: RoutingTarget, *, chunked: bool) -> str:
    # A batching destination's message waits for its batch (sealed by the queue, which
    # holds the batch if the destination is failing). A large body is stored in chunks and
    # streamed as an object of its own, so it never joins a batch.
    if destination.batching and not chunked:
        return MessageState.BATCHING
    return MessageState.HELD if destination.hold else MessageState.QUEUED


_FIELD_OF_HEADER = {
    "projectid": "projectId",
    "installationid": "installationId",
    "connectionid": "connectionId",
    "operationid": "operationId",
    "objectname": "objectName",
    "topic": "topic",
}


# Ingest checks the metadata before the message is stamped: the event-id and timestamp
# are stand-ins of the real ones' length, so that the check (ASCII, control characters,
# S3's budget) is the one that the object's headers will pass.
_PLACEHOLDER_EVENT_ID = "00000000-0000-7000-8000-000000000000"
_PLACEHOLDER_TIME_NS = 1_000_000_000 * 1_000_000_000  # a ten-digit Unix timestamp


def _metadata(project_id: str, message: IncomingMessage, destination_id: str) -> EventMetadata:
    # A validated model keeps its fields in __dict__: read as the message's data.
    return EventMetadata.of(
        vars(message),
        project_id=project_id,
        destination_id=destination_id,
        event_id=_PLACEHOLDER_EVENT_ID,
        event_time_ns=_PLACEHOLDER_TIME_NS,
        connection_id=message.connectionId or "",
        topic=message.topic or "",
    )


def _s3_headers(meta: EventMetadata) -> dict[str, str]:
    return object_metadata_unchecked(meta)


def summary(fields: dict[str, str]) -> str:
    first_key, first = next(iter(fields.items()))
    more = f" (and {len(fields) - 1} more)" if len(fields) > 1 else ""
    return f"message rejected: {first_key}: {first}{more}"
