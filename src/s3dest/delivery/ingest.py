"""Ingest: validate, route, normalise, stamp, and make durable — before saying yes.

A batch is all-or-nothing: every message is checked first and the errors of all of them
are returned together (`MessageInvalid.fields`, keyed ``messages[i].field``); only a batch
without errors is written, in one transaction, and only after that commit does the
caller answer 202.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, select

from s3dest import metrics
from s3dest.errors import InvalidInput, ManifestInvalid, MessageInvalid
from s3dest.keys import EventMetadata
from s3dest.manifest import Manifest, parse_manifest
from s3dest.messages import IncomingMessage, check_complete, data_dict, encode_body, new_stamp
from s3dest.messages import parse_incoming as parse_envelope
from s3dest.providers import normalize_result
from s3dest.s3.metadata import metadata_problems, object_metadata_unchecked
from s3dest.store import queue
from s3dest.store.engine import transaction
from s3dest.store.tables import destinations, manifests


@dataclass(frozen=True, slots=True)
class Accepted:
    event_id: str
    destination_id: str


@dataclass(frozen=True, slots=True)
class _Destination:
    id: str
    name: str
    hold: bool  # failing or disabled: new messages wait with the others


@dataclass
class ProjectView:
    """What routing needs to know about a project, read once per batch."""

    by_ref: dict[str, _Destination]
    manifest: Manifest | None


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


def load_project_view(conn: Connection, project_id: str) -> ProjectView:
    by_ref: dict[str, _Destination] = {}
    rows = conn.execute(
        select(
            destinations.c.id,
            destinations.c.name,
            destinations.c.enabled,
            destinations.c.failing_since,
        ).where(destinations.c.project_id == project_id)
    )
    for r in rows:
        d = _Destination(id=r.id, name=r.name, hold=(not r.enabled) or r.failing_since is not None)
        by_ref[r.id] = d
        by_ref[r.name] = d
    source = conn.execute(
        select(manifests.c.source).where(manifests.c.project_id == project_id)
    ).scalar_one_or_none()
    return ProjectView(by_ref=by_ref, manifest=_parse_cached(source) if source else None)


@dataclass(frozen=True, slots=True)
class Prepared:
    row: dict[str, Any]
    destination_id: str


def prepare(
    project_id: str, raw: Any, view: ProjectView, *, prefix: str = "", now_ns: int | None = None
) -> Prepared:
    """Check and shape one message; raises MessageInvalid naming every bad field."""
    message = parse_envelope(raw, prefix=prefix)
    fields: dict[str, str] = {}
    p = prefix + "." if prefix else ""

    if message.projectId is not None and message.projectId != project_id:
        fields[f"{p}projectId"] = (
            f"projectId is set from your API key's project; omit it or send {project_id!r}"
        )
    route = None
    if message.integration and view.manifest is not None:
        route = view.manifest.route(message.integration, message.action, message.objectName)
    destination: _Destination | None = None
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
    selected = route.selected_fields if route is not None else None
    result: list[dict[str, Any]] = []
    for i, item in enumerate(message.result):
        try:
            result.append(
                normalize_result(
                    message.provider,
                    message.action,
                    item.model_dump(exclude_unset=True),
                    selected_fields=selected or None,
                    index=i,
                )
            )
        except MessageInvalid as exc:
            fields.update({f"{p}{k}": v for k, v in exc.fields.items()})
    normalized = (
        IncomingMessage.model_validate({**message.model_dump(exclude_unset=True), "result": result})
        if not fields
        else message
    )
    try:
        check_complete(normalized, prefix=p)
    except MessageInvalid as exc:
        fields.update(exc.fields)
    meta = _metadata(project_id, message, destination.id if destination else "")
    for name, problem in metadata_problems(_s3_headers(meta)).items():
        fields[f"{p}{_FIELD_OF_HEADER.get(name, name)}"] = problem
    if fields:
        raise MessageInvalid(_summary(fields), fields)
    assert destination is not None
    data = data_dict(normalized)
    data = {
        "action": data["action"],
        "projectId": project_id,
        **{k: v for k, v in data.items() if k not in ("action", "projectId")},
    }
    body = encode_body(data)
    stamp = new_stamp(now_ns)
    now = time.time()
    row = {
        "event_id": stamp.event_id,
        "project_id": project_id,
        "destination_id": destination.id,
        "state": "held" if destination.hold else "queued",
        "event_time_ns": stamp.event_time_ns,
        "accepted_at": now,
        "connection_id": message.connectionId or "",
        "topic": message.topic or "",
        "object_name": message.objectName,
        "body": body,
        "body_size": len(body),
        "chunked": False,
        "envelope": None,
        "attempts": 0,
        "next_attempt_at": now,
        "updated_at": now,
    }
    return Prepared(row=row, destination_id=destination.id)


_FIELD_OF_HEADER = {
    "projectid": "projectId",
    "installationid": "installationId",
    "connectionid": "connectionId",
    "operationid": "operationId",
    "objectname": "objectName",
    "topic": "topic",
}


def _metadata(project_id: str, message: IncomingMessage, destination_id: str) -> EventMetadata:
    return EventMetadata(
        projectId=project_id,
        installationId=message.installationId,
        connectionId=message.connectionId or "",
        destinationId=destination_id,
        operationId=message.operationId or "",
        objectName=message.objectName,
        event_id="00000000-0000-7000-8000-000000000000",
        timestamp="0000000000",
        topic=message.topic or "",
    )


def _s3_headers(meta: EventMetadata) -> dict[str, str]:
    return object_metadata_unchecked(meta)


def _summary(fields: dict[str, str]) -> str:
    first_key, first = next(iter(fields.items()))
    more = f" (and {len(fields) - 1} more)" if len(fields) > 1 else ""
    return f"message rejected: {first_key}: {first}{more}"


class Ingestor:
    """Accepts messages for a project; `on_accept` wakes local workers."""

    def __init__(self, engine: Engine, *, on_accept: Callable[[], None] | None = None) -> None:
        self.engine = engine
        self.on_accept = on_accept

    def ingest(self, project_id: str, items: Sequence[Any], *, batch: bool) -> list[Accepted]:
        if not items:
            raise InvalidInput("no messages", {"messages": "send at least one message"})
        with transaction(self.engine) as conn:
            view = load_project_view(conn, project_id)
        prepared: list[Prepared] = []
        errors: dict[str, str] = {}
        for i, raw in enumerate(items):
            try:
                prepared.append(
                    prepare(project_id, raw, view, prefix=f"messages[{i}]" if batch else "")
                )
            except MessageInvalid as exc:
                errors.update(exc.fields)
        if errors:
            raise MessageInvalid(_summary(errors), errors)
        with transaction(self.engine) as conn:
            queue.enqueue(conn, [p.row for p in prepared])
        for p in prepared:
            metrics.accepted.labels(p.destination_id).inc()
        if self.on_accept is not None:
            self.on_accept()
        return [
            Accepted(event_id=p.row["event_id"], destination_id=p.destination_id) for p in prepared
        ]
