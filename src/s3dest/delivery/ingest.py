"""Ingest: validate, route, normalise, stamp, and make durable — before saying yes.

A batch is all-or-nothing: every message is checked first and the errors of all of them
are returned together (`MessageInvalid.fields`, keyed ``messages[i].field``); only a batch
without errors is written, in one transaction, and only after that commit does the
caller answer 202.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import orjson
from pydantic import ValidationError
from sqlalchemy import Connection, Engine, select

from s3dest import bodies, metrics
from s3dest.errors import InvalidInput, ManifestInvalid, MessageInvalid
from s3dest.keys import EventMetadata
from s3dest.manifest import Manifest, parse_manifest
from s3dest.messages import (
    DATA_FIELDS,
    SUBSCRIBE_EVENT_TYPES,
    IncomingMessage,
    MessageData,
    ResultItem,
    check_complete,
    data_dict,
    encode_body,
    new_stamp,
)
from s3dest.messages import _field_errors as field_errors
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


@dataclass(frozen=True, slots=True)
class _Routed:
    destination: _Destination | None
    selected: frozenset[str] | None  # the manifest's field selection for this object


def _check_envelope(
    project_id: str, message: IncomingMessage, view: ProjectView, p: str, fields: dict[str, str]
) -> _Routed:
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
    meta = _metadata(project_id, message, destination.id if destination else "")
    problems = view.metadata_checked.get(meta)
    if problems is None:
        problems = metadata_problems(_s3_headers(meta))
        view.metadata_checked[meta] = problems
    for name, problem in problems.items():
        fields[f"{p}{_FIELD_OF_HEADER.get(name, name)}"] = problem
    selected = route.selected_fields if route is not None else None
    return _Routed(destination=destination, selected=selected or None)


def _ordered_data(project_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """The body's data object: action, then projectId (from the API key), then the rest."""
    return {
        "action": data["action"],
        "projectId": project_id,
        **{k: v for k, v in data.items() if k not in ("action", "projectId")},
    }


def _row(
    project_id: str,
    message: IncomingMessage,
    destination: _Destination,
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
        "state": "held" if destination.hold else "queued",
        "event_time_ns": stamp.event_time_ns,
        "accepted_at": now,
        "connection_id": message.connectionId or "",
        "topic": message.topic or "",
        "object_name": message.objectName,
        "body": body,
        "body_size": body_size,
        "chunked": body is None,
        "envelope": envelope,
        "attempts": 0,
        "next_attempt_at": now,
        "updated_at": now,
    }


def prepare(
    project_id: str, raw: Any, view: ProjectView, *, prefix: str = "", now_ns: int | None = None
) -> Prepared:
    """Check and shape one message; raises MessageInvalid naming every bad field."""
    message = parse_envelope(raw, prefix=prefix)
    fields: dict[str, str] = {}
    p = prefix + "." if prefix else ""
    routed = _check_envelope(project_id, message, view, p, fields)
    # Normalised from the items as received: once validated (extra fields forbidden), a
    # plain dict item holds exactly what its model's dump(exclude_unset=True) would, and
    # normalize_result reads it by key, so the dump is not needed. Anything else (a
    # caller passing models, tuples…) goes through the models' dumps.
    given = raw["result"]
    plain = type(given) is list and all(type(item) is dict for item in given)
    result: list[dict[str, Any]] = []
    for i, item in enumerate(given if plain else message.result):
        try:
            result.append(
                normalize_result(
                    message.provider,
                    message.action,
                    item if plain else item.model_dump(exclude_unset=True),
                    selected_fields=routed.selected,
                    index=i,
                )
            )
        except MessageInvalid as exc:
            fields.update({f"{p}{k}": v for k, v in exc.fields.items()})
    data: dict[str, Any] | None = None
    if not fields:
        if _valid_items(message.action, result):
            # What re-validating the normalised message and dumping it would give, built
            # directly: the same keys in the same order, the same values.
            data = _data_of(project_id, message, result)
        else:
            normalized = IncomingMessage.model_validate(
                {**message.model_dump(exclude_unset=True), "result": result}
            )
            # Only on the normalised message: before normalisation an item may lack an
            # event type its rawEvent supplies, and normalize_result already explains a
            # missing one better than this generic check would (which used to overwrite
            # its message).
            try:
                check_complete(normalized, prefix=p)
            except MessageInvalid as exc:
                fields.update(exc.fields)
            data = _ordered_data(project_id, data_dict(normalized))
    if fields:
        raise MessageInvalid(_summary(fields), fields)
    assert routed.destination is not None and data is not None
    body = encode_body(data)
    row = _row(
        project_id, message, routed.destination, body=body, body_size=len(body), now_ns=now_ns
    )
    return Prepared(row=row, destination_id=routed.destination.id)


_SUBSCRIBE_TYPES = frozenset(SUBSCRIBE_EVENT_TYPES)
_ITEM_KEYS = frozenset(ResultItem.model_fields)
_HEAD_FIELDS = tuple(f for f in DATA_FIELDS if f not in ("action", "projectId", "result"))


def _valid_items(action: str, result: list[dict[str, Any]]) -> bool:
    """True when every normalised item is certainly a valid `ResultItem` that passes
    `check_complete`, and is already as its model would dump it (keys in field order).

    normalize_result writes ``fields`` (an object), then for subscribe the event types,
    then ``raw`` and ``rawEvent`` as given (already validated); only the event types can
    come from a raw event and so be of any JSON type. When in doubt: False, and the
    caller re-validates the normalised message as it always did.
    """
    for item in result:
        if not isinstance(item.get("fields"), dict):
            return False
        if action == "subscribe":
            if item.get("subscribeEventType") not in _SUBSCRIBE_TYPES:
                return False
            provider_type = item.get("providerEventType")
            if provider_type is not None and type(provider_type) is not str:
                return False
        elif "subscribeEventType" in item or "providerEventType" in item:
            return False
        if not _ITEM_KEYS.issuperset(item):
            return False
    return True


def _data_of(
    project_id: str, message: IncomingMessage, result: list[dict[str, Any]]
) -> dict[str, Any]:
    """The body's data object, as ``_ordered_data(project_id, data_dict(normalised))``:
    action, projectId, the page's fields that were given, in the page's order, result."""
    data: dict[str, Any] = {"action": message.action, "projectId": project_id}
    given = message.model_fields_set
    for name in _HEAD_FIELDS:
        if name in given:
            data[name] = getattr(message, name)
    data["result"] = result
    return data


# At most this many problems are reported for one large message (it may have millions of
# items, each with the same mistake).
_MAX_ITEM_ERRORS = 20


@dataclass
class PreparedLarge:
    """A large message, checked and compacted into `body` (a temporary file)."""

    row: dict[str, Any]
    destination_id: str
    body: IO[bytes]
    result_items: int


def prepare_large(
    project_id: str,
    source: IO[bytes],
    view: ProjectView,
    *,
    spool_dir: str | None = None,
    now_ns: int | None = None,
) -> PreparedLarge:
    """Check and compact one message streamed from `source`, in bounded memory.

    The stored body is byte for byte what `prepare` makes of the same message (routing
    fields dropped, projectId set, items normalised by their provider); it goes to a
    temporary file, which the caller copies into ``message_chunks``.
    """
    members = bodies.scan_top_level(source)
    message = parse_envelope(members)  # result is [] (or the wrong type: reported)
    fields: dict[str, str] = {}
    routed = _check_envelope(project_id, message, view, "", fields)
    if fields:
        raise MessageInvalid(_summary(fields), fields)
    assert routed.destination is not None
    head = _ordered_data(project_id, data_dict(message))
    del head["result"]

    def item(i: int, raw: Any) -> bytes:
        try:
            return _stream_item(message, raw, i, routed.selected)
        except MessageInvalid as exc:
            fields.update(exc.fields)
            if len(fields) >= _MAX_ITEM_ERRORS:
                raise MessageInvalid(_summary(fields), fields) from None
            return b"null"

    source.seek(0)
    out = tempfile.TemporaryFile(dir=spool_dir)  # noqa: SIM115 (returned, closed by the caller)
    try:
        compacted = bodies.write_message_body(source, head, item, out)
        if fields:
            raise MessageInvalid(_summary(fields), fields)
        out.seek(0)
    except BaseException:
        out.close()
        raise
    row = _row(
        project_id,
        message,
        routed.destination,
        body=None,
        body_size=compacted.size,
        envelope=orjson.dumps(head),
        now_ns=now_ns,
    )
    return PreparedLarge(
        row=row,
        destination_id=routed.destination.id,
        body=out,
        result_items=compacted.result_items,
    )


def _stream_item(
    message: IncomingMessage, raw: Any, index: int, selected: frozenset[str] | None
) -> bytes:
    """One result item of a streamed message: validated and normalised as `prepare` does.

    The checks and the output are those of the small path (validate the item, normalise
    it, re-validate, check subscribe event types), without its per-item model dumps: a
    validated item's dump is the item itself, and the normalised dict is already in the
    model's field order.
    """
    base = f"result[{index}]"
    try:
        ResultItem.model_validate(raw)
    except ValidationError as exc:
        fields = field_errors(exc, base)
        raise MessageInvalid(_summary(fields), fields) from None
    normalized = normalize_result(
        message.provider, message.action, raw, selected_fields=selected, index=index
    )
    try:
        final = ResultItem.model_validate(normalized)
    except ValidationError as exc:
        fields = field_errors(exc, base)
        raise MessageInvalid(_summary(fields), fields) from None
    if message.action == "subscribe" and final.subscribeEventType is None:
        # The small path's own check and wording, on a one-item message; renumbered.
        one = MessageData.model_construct(
            action=message.action,
            provider=message.provider,
            installationId=message.installationId,
            objectName=message.objectName,
            result=[final],
        )
        try:
            check_complete(one)
        except MessageInvalid as exc:
            fields = {k.replace("result[0]", base, 1): v for k, v in exc.fields.items()}
            raise MessageInvalid(_summary(fields), fields) from None
    try:
        return orjson.dumps(normalized)
    except TypeError as exc:  # e.g. an integer beyond 64 bits
        raise MessageInvalid(
            f"{base} cannot be stored: {exc}", {base: f"cannot be encoded as JSON: {exc}"}
        ) from None


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

    def __init__(
        self,
        engine: Engine,
        *,
        on_accept: Callable[[], None] | None = None,
        chunk_bytes: int = bodies.CHUNK,
    ) -> None:
        self.engine = engine
        self.on_accept = on_accept
        self.chunk_bytes = chunk_bytes
        bodies.limit_malloc_arenas()  # large bodies in bounded memory, see there
        # The API process answers /metrics: its queue depth is the shared queue's.
        metrics.set_queue_depth_source(lambda: float(queue.queue_depth(engine)))
        metrics.set_state_counts_source(lambda: queue.pending_counts(engine))

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
        per_destination = Counter(p.destination_id for p in prepared)
        for destination_id, count in per_destination.items():
            metrics.accepted.labels(destination_id).inc(count)
        if self.on_accept is not None:
            self.on_accept()
        return [
            Accepted(event_id=p.row["event_id"], destination_id=p.destination_id) for p in prepared
        ]

    def ingest_large(
        self, project_id: str, source: IO[bytes], *, spool_dir: str | None = None
    ) -> Accepted:
        """One message streamed from a file (a spooled request body), in bounded memory.

        The message is checked and compacted first (nothing is written if it is invalid);
        then its body goes into ``message_chunks`` and its row into ``messages`` in one
        transaction, so it is durable, whole, before the caller answers 202.
        """
        with transaction(self.engine) as conn:
            view = load_project_view(conn, project_id)
        prepared = prepare_large(project_id, source, view, spool_dir=spool_dir)
        try:
            with transaction(self.engine) as conn:
                queue.write_chunks(
                    conn, prepared.row["event_id"], _read_chunks(prepared.body, self.chunk_bytes)
                )
                queue.enqueue(conn, [prepared.row])
        finally:
            prepared.body.close()
        metrics.accepted.labels(prepared.destination_id).inc()
        if self.on_accept is not None:
            self.on_accept()
        return Accepted(event_id=prepared.row["event_id"], destination_id=prepared.destination_id)


def _read_chunks(source: IO[bytes], size: int) -> Iterator[bytes]:
    while chunk := source.read(size):
        yield chunk
