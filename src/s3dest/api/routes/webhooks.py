"""/v1/webhooks: the project's webhook endpoints (SPEC §4 "Notifications")."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from s3dest.api.deps import CurrentActor, CurrentProject, State
from s3dest.api.errors import error_responses
from s3dest.notifications import service
from s3dest.runtime import AppState

router = APIRouter(tags=["webhooks"], responses=error_responses(401, 429))

# store.outbox.EVENT_TYPES, spelled out for the schema (tests/unit/test_daily_summary.py
# keeps the two equal).
EventType = Literal[
    "destination.failing", "destination.recovered", "message.parked", "summary.daily"
]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        description="where events are POSTed (https://…); its host must be public, or "
        "allow-listed by the operator (S3DEST_ALLOWED_ENDPOINT_HOSTS)",
        examples=["https://hooks.example.com/s3dest"],
    )
    events: list[EventType] | None = Field(
        None,
        description="the event types to send (default: destination.failing, "
        "destination.recovered and message.parked; summary.daily, once a UTC day, only "
        "when asked for)",
    )
    description: str = Field("", description="what the endpoint is for (at most 200 characters)")


class WebhookPublic(BaseModel):
    id: str
    url: str
    events: list[str]
    description: str
    createdAt: float = Field(description="Unix seconds")


class WebhookCreated(WebhookPublic):
    secret: str = Field(
        description="the signing secret (whsec_…): shown this once, stored encrypted. "
        "Verify each delivery's webhook-signature with it (Standard Webhooks)"
    )


class WebhookList(BaseModel):
    webhooks: list[WebhookPublic]


class WebhookDelivery(BaseModel):
    id: str = Field(description="the webhook-id header of the delivery")
    type: str
    state: Literal["pending", "delivered", "failed"]
    attempts: int
    lastStatus: int | None = Field(description="the endpoint's last HTTP status")
    lastError: str | None
    createdAt: float
    nextAttemptAt: float | None
    finishedAt: float | None


class WebhookDeliveries(BaseModel):
    deliveries: list[WebhookDelivery]


class WebhookTest(BaseModel):
    ok: bool = Field(description="the endpoint answered 2xx")
    status: int | None = Field(description="its HTTP status, null when it did not answer")
    error: str | None


@router.get("/v1/webhooks", response_model=WebhookList)
def list_webhooks(project: CurrentProject, state: State) -> Any:
    """The project's endpoints (never their secrets)."""
    rows = service.list_(state.engine, project_id=project.id)
    return {"webhooks": [service.public_webhook(r) for r in rows]}


@router.post(
    "/v1/webhooks",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookCreated,
    responses=error_responses(409, 422),
)
def create_webhook(
    body: WebhookCreate, project: CurrentProject, actor: CurrentActor, state: State
) -> Any:
    """Register an endpoint for destination.failing, destination.recovered and
    message.parked events (and, if asked, summary.daily), signed per Standard Webhooks; the
    response carries the signing secret, once."""
    created = service.create(
        state.engine,
        state.box,
        project_id=project.id,
        url=body.url,
        events=body.events,
        description=body.description,
        actor=actor,
    )
    return {**service.public_webhook(created.webhook), "secret": created.secret}


@router.get(
    "/v1/webhooks/{webhook_id}/deliveries",
    response_model=WebhookDeliveries,
    responses=error_responses(404),
)
def webhook_deliveries(
    webhook_id: str,
    project: CurrentProject,
    state: State,
    limit: int = Query(20, ge=1, le=200),
) -> Any:
    """The endpoint's latest deliveries, newest first: pending (with the next attempt's
    time), delivered, or failed (given up after three days)."""
    rows = service.deliveries(
        state.engine, project_id=project.id, webhook_id=webhook_id, limit=limit
    )
    return {"deliveries": [service.public_delivery(r) for r in rows]}


@router.delete(
    "/v1/webhooks/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(404),
)
def delete_webhook(
    webhook_id: str, project: CurrentProject, actor: CurrentActor, state: State
) -> Response:
    """Remove the endpoint; its pending deliveries are not sent."""
    service.delete(state.engine, project_id=project.id, webhook_id=webhook_id, actor=actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/v1/webhooks/{webhook_id}/test",
    response_model=WebhookTest,
    responses=error_responses(404, 429),
)
async def test_webhook(webhook_id: str, project: CurrentProject, state: State) -> Any:
    """Send one signed webhook.test event now and report the endpoint's answer (within the
    connection tests' bounds: S3DEST_PROJECT_CONNECTION_TESTS, S3DEST_CONNECTION_TESTS)."""
    result = await state.fair.connection_test(project.id, _test, state, project.id, webhook_id)
    return {"ok": result.ok, "status": result.status, "error": result.error}


def _test(state: AppState, project_id: str, webhook_id: str) -> service.Tested:
    return service.test(state.engine, state.box, project_id=project_id, webhook_id=webhook_id)
