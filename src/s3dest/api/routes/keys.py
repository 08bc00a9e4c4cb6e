"""/v1/key-templates/preview: render a template against a message or a sample."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from s3dest.api.deps import CurrentProject
from s3dest.api.errors import error_responses
from s3dest.keys import preview_key

router = APIRouter(
    prefix="/v1/key-templates", tags=["key templates"], responses=error_responses(401)
)


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keyTemplate: str | None = None
    message: dict[str, Any] | None = None


class PreviewResponse(BaseModel):
    key: str
    warnings: list[str]
    sampleKeys: dict[str, str]


@router.post("/preview", response_model=PreviewResponse, responses=error_responses(422))
def preview(body: PreviewRequest, project: CurrentProject) -> Any:
    return preview_key(body.keyTemplate, body.message, project_id=project.id)
