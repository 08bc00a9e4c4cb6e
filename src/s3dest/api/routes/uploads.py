"""/v1/destinations/{ref}/orphaned-uploads: multipart uploads s3dest could not abort."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from s3dest.api.deps import CurrentProject, State
from s3dest.api.errors import error_responses
from s3dest.destinations import uploads

router = APIRouter(prefix="/v1/destinations", tags=["destinations"], responses=error_responses(401))

Ref = Annotated[str, Path(description="the destination's id or its name")]


class OrphanedUpload(BaseModel):
    bucket: str
    key: str
    uploadId: str
    eventId: str
    reason: str = Field(description="why s3dest could not abort it")
    recordedAt: float


class OrphanedUploads(BaseModel):
    orphanedUploads: list[OrphanedUpload]
    lifecycleRule: dict[str, Any] = Field(
        description="a bucket lifecycle configuration that aborts incomplete uploads"
    )
    lifecycleCommand: str = Field(description="the AWS CLI command that applies it")
    advice: str


@router.get(
    "/{ref}/orphaned-uploads",
    response_model=OrphanedUploads,
    responses=error_responses(404, 422),
)
def list_orphaned_uploads(ref: Ref, project: CurrentProject, state: State) -> Any:
    """Multipart uploads left in the bucket (their abort was refused), newest first, with
    the lifecycle rule that removes them."""
    return uploads.orphaned_uploads(state.engine, project_id=project.id, ref=ref).as_dict()
