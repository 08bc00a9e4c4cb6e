"""/v1/api-keys: the project's API keys (list, create, revoke) and /v1/audit."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from s3dest.access import apikeys, audit
from s3dest.api.deps import CurrentActor, CurrentProject, State
from s3dest.api.errors import error_responses
from s3dest.store.audit import MAX_LIMIT

router = APIRouter(tags=["access"], responses=error_responses(401, 429))


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="what the key is for, e.g. 'ci' (at most 100 characters)")


class ApiKeyPublic(BaseModel):
    id: str
    name: str
    prefix: str = Field(description="the key's first characters, e.g. s3d_AbCd")
    createdAt: float = Field(description="Unix seconds")
    lastUsedAt: float | None = Field(description="Unix seconds, to within a minute")


class ApiKeyList(BaseModel):
    keys: list[ApiKeyPublic]


class ApiKeyCreated(BaseModel):
    id: str
    name: str
    key: str = Field(description="the key itself: shown this once, stored only as a hash")


class AuditEntry(BaseModel):
    id: str
    at: float = Field(description="Unix seconds")
    actor: str = Field(description='"key:<key id>", "dashboard:<key id>" or "cli"')
    keyPrefix: str | None = Field(description="the prefix of the acting key")
    action: str = Field(description="e.g. destination.updated, apiKey.revoked")
    target: str = Field(description='what was changed, e.g. "destination:<id>"')
    changes: dict[str, Any] = Field(description="field names and values; secrets are ***")


class AuditList(BaseModel):
    entries: list[AuditEntry]


@router.get("/v1/api-keys", response_model=ApiKeyList)
def list_keys(project: CurrentProject, state: State) -> Any:
    """The project's live keys: never the key or its hash."""
    keys = apikeys.list_(state.engine, project_id=project.id)
    return {"keys": [apikeys.public_key(k) for k in keys]}


@router.post(
    "/v1/api-keys",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    responses=error_responses(422),
)
def create_key(
    body: ApiKeyCreate, project: CurrentProject, actor: CurrentActor, state: State
) -> Any:
    created = apikeys.create(state.engine, project_id=project.id, name=body.name, actor=actor)
    return {"id": created.info.id, "name": created.info.name, "key": created.api_key}


@router.delete(
    "/v1/api-keys/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(404, 409),
)
def revoke_key(key_id: str, project: CurrentProject, actor: CurrentActor, state: State) -> Response:
    """Revoke a key: refused within a second by every process; the project's last key
    cannot be revoked (409)."""
    apikeys.revoke(state.engine, project_id=project.id, key_id=key_id, actor=actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/v1/audit", response_model=AuditList)
def audit_log(
    project: CurrentProject,
    state: State,
    limit: int = Query(100, ge=1, le=MAX_LIMIT),
) -> Any:
    """Who changed what in the project, newest first; secrets never appear."""
    rows = audit.entries(state.engine, project_id=project.id, limit=limit)
    return {"entries": [audit.public_entry(r) for r in rows]}
