"""/v1/destinations: create, list, show, update, delete, test, replay."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, status
from pydantic import BaseModel

from s3dest.api.deps import CurrentProject, State
from s3dest.destinations import service
from s3dest.destinations.validation import DestinationCreate, DestinationUpdate
from s3dest.store import queue

router = APIRouter(prefix="/v1/destinations", tags=["destinations"])


class DestinationPublic(BaseModel):
    id: str
    name: str
    bucket: str
    region: str
    accessKeyId: str
    hasSessionToken: bool
    keyTemplate: str | None
    storageClass: str
    endpointUrl: str | None
    writeMode: str
    enabled: bool
    status: str
    diagnosis: str | None
    failingSince: float | None
    warnings: list[str]
    createdAt: float
    updatedAt: float


class DestinationList(BaseModel):
    destinations: list[DestinationPublic]


class TestResult(BaseModel):
    ok: bool
    key: str
    diagnosis: str | None
    etag: str | None


class ReplayResult(BaseModel):
    replayed: int


def _body(model: BaseModel) -> dict[str, Any]:
    return {
        k: (v.get_secret_value() if hasattr(v, "get_secret_value") else v)
        for k, v in ((name, getattr(model, name)) for name in model.model_fields_set)
    }


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DestinationPublic)
def create_destination(body: DestinationCreate, project: CurrentProject, state: State) -> Any:
    saved = service.create(state.engine, state.box, project.id, _body(body))
    return service.public(saved.row, saved.warnings)


@router.get("", response_model=DestinationList)
def list_destinations(project: CurrentProject, state: State) -> Any:
    return {"destinations": [service.public(r) for r in service.list_(state.engine, project.id)]}


@router.get("/{ref}", response_model=DestinationPublic)
def show_destination(ref: str, project: CurrentProject, state: State) -> Any:
    return service.public(service.get(state.engine, project.id, ref))


@router.patch("/{ref}", response_model=DestinationPublic)
def update_destination(
    ref: str, body: DestinationUpdate, project: CurrentProject, state: State
) -> Any:
    saved = service.update_(state.engine, state.box, project.id, ref, _body(body))
    state.wake_workers()
    return service.public(saved.row, saved.warnings)


@router.delete("/{ref}", status_code=status.HTTP_204_NO_CONTENT)
def delete_destination(
    ref: str,
    project: CurrentProject,
    state: State,
    force: bool = Query(False, description="discard messages still waiting for it"),
) -> None:
    service.delete(state.engine, project.id, ref, force=force)


@router.post("/{ref}/test", response_model=TestResult)
def test_destination(ref: str, project: CurrentProject, state: State) -> Any:
    result = service.connection_test(state.engine, state.box, project.id, ref)
    if result.ok:
        state.wake_workers()
    return result.as_dict()


@router.post("/{ref}/replay", response_model=ReplayResult)
def replay_destination(ref: str, project: CurrentProject, state: State) -> Any:
    row = service.get(state.engine, project.id, ref)
    count = queue.replay_destination(state.engine, row.id)
    state.wake_workers()
    return {"replayed": count}
