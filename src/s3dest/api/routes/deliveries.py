"""/v1/deliveries: search and page a project's delivery records, export them, re-deliver.

Every route here refuses query parameters it does not declare (422 naming them).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from s3dest.api.deps import CurrentActor, CurrentProject, State
from s3dest.api.errors import error_responses
from s3dest.api.query import StrictQuery
from s3dest.api.routes.messages import MessageRecord, message_record
from s3dest.delivery import search
from s3dest.delivery.service import MessageState, get
from s3dest.errors import InvalidInput
from s3dest.store.queue import DeliveryFilter

router = APIRouter(tags=["deliveries"], responses=error_responses(401, 404, 409, 422, 429, 503))

_TIME = "RFC 3339 (2026-12-01T19:00:00Z) or Unix seconds; the message's event time"


class DeliveryPage(BaseModel):
    deliveries: list[MessageRecord]
    nextCursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class RedeliverRequest(BaseModel):
    """Which delivered messages to write again: `eventIds`, or a time range (`since`,
    optional `until`) with optional filters."""

    model_config = ConfigDict(extra="forbid")
    eventIds: list[str] | None = Field(None, description="at most 1000 event ids")
    destination: str | None = Field(None, description="destination id or name")
    since: str | None = Field(None, description=_TIME + " (inclusive)")
    until: str | None = Field(None, description=_TIME + " (exclusive)")
    installationId: str | None = None
    objectName: str | None = None
    key: str | None = Field(None, description="object key prefix")


class RedeliverResult(BaseModel):
    redelivered: int
    eventIds: list[str] = Field(description="the messages queued to be written again")
    notDelivered: list[str] = Field(description="not in state delivered: left as they are")
    notRetained: list[str] = Field(description="delivered, but their body is no longer kept")
    notFound: list[str] = Field(description="no such message in this project")


Destination = Annotated[str | None, Query(description="destination id or name")]
StateQuery = Annotated[MessageState | None, Query(alias="state")]
EventId = Annotated[str | None, Query(alias="eventId", description="one message's event id")]
Installation = Annotated[str | None, Query(alias="installationId")]
ObjectName = Annotated[str | None, Query(alias="objectName")]
KeyPrefix = Annotated[str | None, Query(description="the S3 object key starts with this")]
Since = Annotated[str | None, Query(description=_TIME + " (inclusive)")]
Until = Annotated[str | None, Query(description=_TIME + " (exclusive)")]


def _query_filter(
    project: CurrentProject,
    state: State,
    destination: Destination = None,
    state_filter: StateQuery = None,
    event_id: EventId = None,
    installation_id: Installation = None,
    object_name: ObjectName = None,
    key: KeyPrefix = None,
    since: Since = None,
    until: Until = None,
) -> DeliveryFilter:
    """The filters of the search and the export, from the query (one declaration, so both
    routes take and document the same parameters)."""
    return search.make_filter(
        state.engine,
        project_id=project.id,
        destination=destination,
        state=state_filter,
        event_id=event_id,
        installation_id=installation_id,
        object_name=object_name,
        key_prefix=key,
        since=since,
        until=until,
    )


QueryFilter = Annotated[DeliveryFilter, Depends(_query_filter)]


@router.get("/v1/deliveries", response_model=DeliveryPage, dependencies=[StrictQuery])
def deliveries(
    state: State,
    f: QueryFilter,
    cursor: Annotated[
        str | None, Query(description="`nextCursor` of the previous page (opaque)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=search.MAX_LIMIT)] = 100,
) -> Any:
    """The project's delivery records, newest accepted first, a page at a time.

    Filters combine (all must match). Pages are cut by an opaque `cursor` on the event id
    (UUIDv7, in acceptance order): messages accepted while you page arrive before the
    first page, never inside the pages still to read."""
    page = search.search(state.engine, f, cursor=cursor, limit=limit)
    return {"deliveries": [message_record(r) for r in page.records], "nextCursor": page.next_cursor}


@router.get(
    "/v1/deliveries/export",
    dependencies=[StrictQuery],
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "Every matching record, streamed: JSON Lines (one MessageRecord "
            "per line) or CSV with a header row.",
            "content": {"application/x-ndjson": {}, "text/csv": {}},
        }
    },
)
def export(
    state: State,
    f: QueryFilter,
    format: Annotated[Literal["jsonl", "csv"], Query(description="jsonl or csv")] = "jsonl",
) -> StreamingResponse:
    """Every record of the project matching the filters (those of `GET /v1/deliveries`),
    newest first, streamed."""
    return StreamingResponse(
        search.export(state.engine, f, format),
        media_type=search.EXPORT_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="deliveries.{format}"'},
    )


@router.post("/v1/deliveries/redeliver", response_model=RedeliverResult)
def redeliver(
    body: RedeliverRequest, project: CurrentProject, actor: CurrentActor, state: State
) -> Any:
    """Write delivered messages again — the same key and body, as a new attempt — while
    their body is kept: a selection (`eventIds`) or a time range. Audited."""
    f = None
    terms = (body.destination, body.since, body.until, body.installationId, body.objectName)
    if body.eventIds is not None and any(t is not None for t in (*terms, body.key)):
        raise InvalidInput(
            "eventIds and a filter were both given",
            {"eventIds": "give eventIds, or a time range with filters, not both"},
        )
    if body.eventIds is None:
        f = search.make_filter(
            state.engine,
            project_id=project.id,
            destination=body.destination,
            installation_id=body.installationId,
            object_name=body.objectName,
            key_prefix=body.key,
            since=body.since,
            until=body.until,
        )
    done = search.redeliver_selection(
        state.engine, project_id=project.id, actor=actor, event_ids=body.eventIds, f=f
    )
    if done.queued:
        state.wake_workers()
    return {
        "redelivered": len(done.queued),
        "eventIds": done.queued,
        "notDelivered": done.not_delivered,
        "notRetained": done.not_retained,
        "notFound": done.not_found,
    }


@router.post("/v1/messages/{event_id}/redeliver", response_model=MessageRecord)
def redeliver_message(
    event_id: str, project: CurrentProject, actor: CurrentActor, state: State
) -> Any:
    """Write one delivered message again (409 if it is not delivered or its body is gone)."""
    search.redeliver_message(state.engine, project_id=project.id, event_id=event_id, actor=actor)
    # Read before the workers are woken: the answer is the message as queued again, not as a
    # worker that claimed it a moment later left it (`delivering`).
    queued = get(state.engine, project_id=project.id, event_id=event_id)
    state.wake_workers()
    return message_record(queued)
