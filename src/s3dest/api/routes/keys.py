"""/v1/key-templates/preview: render a template against a message or a sample."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from s3dest.api.deps import CurrentProject, State
from s3dest.api.errors import error_responses
from s3dest.destinations import key_checks

router = APIRouter(
    prefix="/v1/key-templates", tags=["key templates"], responses=error_responses(401)
)


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keyTemplate: str | None = None
    message: dict[str, Any] | None = None
    destination: str | None = Field(
        None,
        description="a destination's id or name: preview against its recent messages "
        "(default: the project's)",
    )


class RecentKey(BaseModel):
    eventId: str
    key: str | None = Field(description="the key, or null when the template fails for it")
    error: str | None = Field(description="why the template gives this message no key")


class PreviewResponse(BaseModel):
    key: str
    warnings: list[str]
    sampleKeys: dict[str, str] = Field(
        description="the samples' keys; a data field a sample lacks shows as {field}"
    )
    recentKeys: list[RecentKey] = Field(
        description="the keys of the latest messages whose body s3dest still holds"
    )


@router.post("/preview", response_model=PreviewResponse, responses=error_responses(404, 422))
def preview(body: PreviewRequest, project: CurrentProject, state: State) -> Any:
    return key_checks.preview(
        state.engine,
        project_id=project.id,
        template=body.keyTemplate,
        message=body.message,
        destination=body.destination,
    )
