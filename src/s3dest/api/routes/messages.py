"""/v1/messages and /v1/deliveries: ingest, delivery state, replay."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import IO, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from s3dest.api.deps import CurrentActor, CurrentProject, State
from s3dest.api.errors import error_responses
from s3dest.delivery import service as delivery
from s3dest.delivery.service import MessageState, public_record
from s3dest.ingest.reader import read_body
from s3dest.ingest.service import Accepted
from s3dest.messages import IncomingMessage

router = APIRouter(tags=["messages"], responses=error_responses(401, 404, 409, 413, 422, 429, 503))

_INGEST_SCHEMA = IncomingMessage.model_json_schema(ref_template="#/components/schemas/{model}")
_INGEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/IncomingMessage"},
                        {
                            "type": "object",
                            "required": ["messages"],
                            "properties": {
                                "messages": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/IncomingMessage"},
                                }
                            },
                        },
                    ]
                }
            }
        },
    }
}


class AcceptedItem(BaseModel):
    eventId: str
    destinationId: str


class AcceptedResponse(BaseModel):
    accepted: list[AcceptedItem]


class Attempt(BaseModel):
    worker: str
    startedAt: float
    finishedAt: float
    outcome: str
    error: str | None


class MessageRecord(BaseModel):
    eventId: str
    destinationId: str
    state: Literal["queued", "delivering", "retrying", "held", "parked", "delivered"]
    eventTime: str
    acceptedAt: float
    objectName: str
    size: int
    attempts: int
    nextAttemptAt: float | None
    bucket: str | None
    key: str | None
    etag: str | None
    versionId: str | None
    lastError: str | None
    lastErrorKind: str | None
    deliveredAt: float | None
    updatedAt: float
    history: list[Attempt] | None = None


class DeliveryList(BaseModel):
    deliveries: list[MessageRecord]


class ReplayResult(BaseModel):
    replayed: int


@router.post(
    "/v1/messages",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=AcceptedResponse,
    openapi_extra=_INGEST_BODY,
)
async def ingest(request: Request, project: CurrentProject, state: State) -> Any:
    """Accept one message or {"messages": [...]}; 202 only once they are durable."""
    fair = state.fair
    length = request.headers.get("content-length")
    declared = int(length) if length and length.isdigit() else None
    # Refused before the body is read when the declared size is over a bound (429); a
    # body without a length is charged as it arrives.
    held = fair.admission.hold_ingest(project.id, declared)
    try:
        body = await read_body(request, state.settings, on_size=held.grow)
    except BaseException:
        held.release()
        raise

    def work() -> Accepted:
        # Owns the body and its bytes in flight until the work is done, even if the client
        # has gone meanwhile (the thread cannot be stopped half-way).
        try:
            return state.ingest_processes.ingest(project.id, body)
        finally:
            if not isinstance(body, bytes):
                body.close()
            held.release()

    # On the ingest threads, shared fairly between projects, never on those that serve
    # other requests.
    accepted = await fair.ingest_pool.run(project.id, work)
    # The JSON FastAPI would write for `AcceptedResponse` (compact, same key order), built
    # as the messages were accepted rather than from a model per message.
    if accepted.body_file is not None:
        return _file_response(accepted.body_file)
    return Response(
        accepted.response_body(),
        status_code=status.HTTP_202_ACCEPTED,
        media_type="application/json",
    )


def _file_response(body: IO[bytes]) -> Response:
    """The 202 whose JSON an ingest worker process wrote to `body` (read in pieces, then
    closed): its size is that of the request's for tiny messages, not worth copies."""
    size = os.fstat(body.fileno()).st_size

    def pieces() -> Iterator[bytes]:
        try:
            while piece := body.read(256 * 1024):
                yield piece
        finally:
            body.close()

    return StreamingResponse(
        pieces(),
        status_code=status.HTTP_202_ACCEPTED,
        media_type="application/json",
        headers={"Content-Length": str(size)},
    )


@router.get("/v1/messages/{event_id}", response_model=MessageRecord)
def get_message(event_id: str, project: CurrentProject, state: State) -> Any:
    return public_record(delivery.get(state.engine, project_id=project.id, event_id=event_id))


@router.post("/v1/messages/{event_id}/replay", response_model=MessageRecord)
def replay_message(
    event_id: str, project: CurrentProject, actor: CurrentActor, state: State
) -> Any:
    delivery.replay_message(state.engine, project_id=project.id, event_id=event_id, actor=actor)
    state.wake_workers()
    return public_record(delivery.get(state.engine, project_id=project.id, event_id=event_id))


@router.get("/v1/deliveries", response_model=DeliveryList)
def deliveries(
    project: CurrentProject,
    state: State,
    destination: str | None = Query(None, description="destination id or name"),
    state_filter: Literal["queued", "delivering", "retrying", "held", "parked", "delivered"]
    | None = Query(None, alias="state"),
    limit: int = Query(100, ge=1, le=1000),
) -> Any:
    rows = delivery.list(
        state.engine,
        project_id=project.id,
        destination=destination,
        state=MessageState(state_filter) if state_filter else None,
        limit=limit,
    )
    return {"deliveries": [public_record(r) for r in rows]}
