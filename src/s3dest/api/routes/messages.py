"""/v1/messages: ingest, delivery state, replay (/v1/deliveries: routes/deliveries.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import IO, Any

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from s3dest.api.deps import CurrentActor, CurrentProject, State
from s3dest.api.errors import error_responses
from s3dest.delivery import service as delivery
from s3dest.delivery.service import DeliveryRecord, MessageState, public_record
from s3dest.ingest import idempotency
from s3dest.ingest.reader import read_body
from s3dest.ingest.service import Accepted
from s3dest.messages import IncomingMessage
from s3dest.runtime import AppState

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


class BatchRef(BaseModel):
    id: str
    line: int


class MessageRecord(BaseModel):
    eventId: str
    destinationId: str
    state: MessageState
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
    installationId: str | None = None
    batch: BatchRef | None = None
    history: list[Attempt] | None = None


def message_record(record: DeliveryRecord) -> dict[str, Any]:
    """A record as `MessageRecord`: the service's public form."""
    return public_record(record)


class ReplayResult(BaseModel):
    replayed: int


@router.post(
    "/v1/messages",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=AcceptedResponse,
    openapi_extra=_INGEST_BODY,
)
async def ingest(request: Request, project: CurrentProject, state: State) -> Any:
    """Accept one message or {"messages": [...]}; 202 only once they are durable.

    With an `Idempotency-Key` header, a repeat of the same body within the idempotency
    window gets the first answer again (same event ids, nothing stored twice; the header
    `Idempotent-Replayed: true` says so); the same key with another body is a 422."""
    header = request.headers.get(idempotency.HEADER)
    key = idempotency.parse_key(header) if header is not None else None
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

    def work() -> tuple[Accepted | bytes, bool]:
        # Owns the body and its bytes in flight until the work is done, even if the client
        # has gone meanwhile (the thread cannot be stopped half-way).
        try:
            if key is None:
                return state.ingest_processes.ingest(project.id, body), False
            return _ingest_once(state, project.id, key, body)
        finally:
            if not isinstance(body, bytes):
                body.close()
            held.release()

    # On the ingest threads, shared fairly between projects, never on those that serve
    # other requests.
    accepted, replayed = await fair.ingest_pool.run(project.id, work)
    if isinstance(accepted, bytes):
        return Response(
            accepted,
            status_code=status.HTTP_202_ACCEPTED,
            media_type="application/json",
            headers={"Idempotent-Replayed": "true"} if replayed else None,
        )
    # The JSON FastAPI would write for `AcceptedResponse` (compact, same key order), built
    # as the messages were accepted rather than from a model per message.
    if accepted.body_file is not None:
        return _file_response(accepted.body_file)
    return Response(
        accepted.response_body(),
        status_code=status.HTTP_202_ACCEPTED,
        media_type="application/json",
    )


def _ingest_once(
    state: AppState, project_id: str, key: str, body: bytes | IO[bytes]
) -> tuple[Accepted | bytes, bool]:
    """Ingest under an idempotency key: the earlier answer's bytes for a repeat (True),
    else the new answer, which was kept for the repeats in the messages' transaction."""
    engine = state.engine
    claimed = idempotency.begin(
        engine,
        project_id=project_id,
        key=key,
        body_sha256=idempotency.digest(body),
        # As long as delivered records are kept: a repeat within the retention window.
        window=state.settings.retain_delivered,
    )
    if isinstance(claimed, bytes):
        return claimed, True
    try:
        return state.ingest_processes.ingest(project_id, body, claim=claimed), False
    except BaseException:
        # Not stored (or stored with its answer, which the release leaves alone).
        idempotency.release(engine, claimed)
        raise


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
    return message_record(delivery.get(state.engine, project_id=project.id, event_id=event_id))


@router.post("/v1/messages/{event_id}/replay", response_model=MessageRecord)
def replay_message(
    event_id: str, project: CurrentProject, actor: CurrentActor, state: State
) -> Any:
    delivery.replay_message(state.engine, project_id=project.id, event_id=event_id, actor=actor)
    # Read before the workers are woken: the answer is the message as replayed (queued),
    # not as a worker that claimed it a moment later left it.
    replayed = delivery.get(state.engine, project_id=project.id, event_id=event_id)
    state.wake_workers()
    return message_record(replayed)
