"""/v1/messages and /v1/deliveries: ingest, delivery state, replay."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from s3dest.api.deps import CurrentProject, State
from s3dest.api.errors import PayloadTooLarge
from s3dest.errors import InvalidInput, MessageInvalid
from s3dest.messages import IncomingMessage
from s3dest.store import queue
from s3dest.store.destinations import get_destination

router = APIRouter(tags=["messages"])

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


def _rfc3339_nano(ns: int) -> str:
    from s3dest.keys import time_namespace

    return time_namespace(ns)["rfc3339_nano"]


def public_record(r: dict[str, Any]) -> dict[str, Any]:
    out = {
        "eventId": r["event_id"],
        "destinationId": r["destination_id"],
        "state": r["state"],
        "eventTime": _rfc3339_nano(r["event_time_ns"]),
        "acceptedAt": r["accepted_at"],
        "objectName": r["object_name"],
        "size": r["body_size"],
        "attempts": r["attempts"],
        "nextAttemptAt": r["next_attempt_at"] if r["state"] in ("queued", "retrying") else None,
        "bucket": r["bucket"],
        "key": r["object_key"],
        "etag": r["etag"],
        "versionId": r["version_id"],
        "lastError": r["last_error"],
        "lastErrorKind": r["last_error_kind"],
        "deliveredAt": r["delivered_at"],
        "updatedAt": r["updated_at"],
    }
    if "history" in r:
        out["history"] = [
            {
                "worker": h["worker"],
                "startedAt": h["started_at"],
                "finishedAt": h["finished_at"],
                "outcome": h["outcome"],
                "error": h["error"],
            }
            for h in r["history"]
        ]
    return out


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"request body is {int(declared)} bytes; the limit is {limit} bytes "
            "(S3DEST_MAX_REQUEST_BYTES). Send fewer messages per request"
        )
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(
                f"request body exceeds the limit of {limit} bytes (S3DEST_MAX_REQUEST_BYTES). "
                "Send fewer messages per request"
            )
        parts.append(chunk)
    return b"".join(parts)


def parse_ingest_body(raw: bytes) -> tuple[list[Any], bool]:
    """(messages, is_batch) from a request body; clear errors for bad JSON."""
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(
            f"the body is not valid JSON: {exc}",
            {
                "body": f"not valid JSON (UTF-8) at {exc.pos if hasattr(exc, 'pos') else '?'}: "
                f"{exc.msg if hasattr(exc, 'msg') else exc}"
            },
        ) from None
    if isinstance(payload, dict) and "messages" in payload:
        items = payload["messages"]
        if not isinstance(items, list) or len(payload) != 1:
            raise MessageInvalid(
                'a batch is {"messages": [...]}',
                {"messages": "must be a list of messages, and the only key of the body"},
            )
        return items, True
    if isinstance(payload, list):
        return payload, True
    return [payload], False


@router.post(
    "/v1/messages",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=AcceptedResponse,
    openapi_extra=_INGEST_BODY,
)
async def ingest(request: Request, project: CurrentProject, state: State) -> Any:
    """Accept one message or {"messages": [...]}; 202 only once they are durable."""
    settings = state.settings
    raw = await _read_body(request, settings.max_request_bytes)
    items, batch = parse_ingest_body(raw)
    accepted = await run_in_threadpool(state.ingestor.ingest, project.id, items, batch=batch)
    return {
        "accepted": [{"eventId": a.event_id, "destinationId": a.destination_id} for a in accepted]
    }


@router.get("/v1/messages/{event_id}", response_model=MessageRecord)
def get_message(event_id: str, project: CurrentProject, state: State) -> Any:
    return public_record(queue.get_record(state.engine, project.id, event_id))


@router.post("/v1/messages/{event_id}/replay", response_model=MessageRecord)
def replay_message(event_id: str, project: CurrentProject, state: State) -> Any:
    queue.replay_message(state.engine, project.id, event_id)
    state.wake_workers()
    return public_record(queue.get_record(state.engine, project.id, event_id))


@router.get("/v1/deliveries", response_model=DeliveryList)
def deliveries(
    project: CurrentProject,
    state: State,
    destination: str | None = Query(None, description="destination id or name"),
    state_filter: Literal["queued", "delivering", "retrying", "held", "parked", "delivered"]
    | None = Query(None, alias="state"),
    limit: int = Query(100, ge=1, le=1000),
) -> Any:
    destination_id = None
    if destination:
        destination_id = get_destination(state.engine, project.id, destination).id
    rows = queue.list_records(
        state.engine, project.id, destination_id=destination_id, state=state_filter, limit=limit
    )
    return {"deliveries": [public_record(r) for r in rows]}
