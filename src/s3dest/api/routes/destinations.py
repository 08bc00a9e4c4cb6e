"""/v1/destinations: create, list, show, update, delete, test, replay."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel, Field

from s3dest.api.deps import CurrentProject, State
from s3dest.api.errors import error_responses
from s3dest.delivery import service as delivery
from s3dest.destinations import service
from s3dest.destinations.validation import DestinationCreate, DestinationUpdate

router = APIRouter(prefix="/v1/destinations", tags=["destinations"], responses=error_responses(401))


Ref = Annotated[str, Path(description="the destination's id or its name")]


class DestinationPublic(BaseModel):
    """A destination as the API shows it: never the secret or the session token."""

    id: str
    name: str
    bucket: str
    region: str
    accessKeyId: str = Field(description="masked, e.g. AKIA…WXYZ")
    hasSessionToken: bool
    keyTemplate: str | None = Field(description="JMESPath; null means the default key")
    storageClass: str
    endpointUrl: str | None
    writeMode: Literal["overwrite", "create-only"]
    enabled: bool
    status: Literal["healthy", "failing", "disabled"]
    diagnosis: str | None = Field(description="why the destination is failing, if it is")
    failingSince: float | None = Field(description="Unix seconds")
    warnings: list[str] = Field(
        description="advice about the configuration just saved (only on create and update)"
    )
    createdAt: float = Field(description="Unix seconds")
    updatedAt: float = Field(description="Unix seconds")


class DestinationList(BaseModel):
    destinations: list[DestinationPublic]


class TestResult(BaseModel):
    ok: bool = Field(description="true when S3 accepted the test object")
    key: str = Field(description="the test object's key, under s3dest-connection-test/")
    diagnosis: str | None = Field(description="when not ok: what is wrong and how to fix it")
    etag: str | None


class ReplayResult(BaseModel):
    replayed: int


def _body(model: BaseModel) -> dict[str, Any]:
    return {
        k: (v.get_secret_value() if hasattr(v, "get_secret_value") else v)
        for k, v in ((name, getattr(model, name)) for name in model.model_fields_set)
    }


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=DestinationPublic,
    responses=error_responses(409, 422),
)
def create_destination(body: DestinationCreate, project: CurrentProject, state: State) -> Any:
    saved = service.create(state.engine, state.box, project.id, _body(body))
    return service.public(saved.row, saved.warnings)


@router.get("", response_model=DestinationList)
def list_destinations(project: CurrentProject, state: State) -> Any:
    return {"destinations": [service.public(r) for r in service.list_(state.engine, project.id)]}


@router.get("/{ref}", response_model=DestinationPublic, responses=error_responses(404, 422))
def show_destination(ref: Ref, project: CurrentProject, state: State) -> Any:
    return service.public(service.get(state.engine, project.id, ref))


@router.patch("/{ref}", response_model=DestinationPublic, responses=error_responses(404, 409, 422))
def update_destination(
    ref: Ref, body: DestinationUpdate, project: CurrentProject, state: State
) -> Any:
    saved = service.update_(state.engine, state.box, project.id, ref, _body(body))
    state.wake_workers()
    return service.public(saved.row, saved.warnings)


@router.delete(
    "/{ref}", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(404, 409, 422)
)
def delete_destination(
    ref: Ref,
    project: CurrentProject,
    state: State,
    force: bool = Query(False, description="discard messages still waiting for it"),
) -> None:
    service.delete(state.engine, project.id, ref, force=force)


@router.post("/{ref}/test", response_model=TestResult, responses=error_responses(404, 422))
def test_destination(ref: Ref, project: CurrentProject, state: State) -> Any:
    result = service.connection_test(state.engine, state.box, project.id, ref)
    if result.ok:
        state.wake_workers()
    return result.as_dict()


@router.post("/{ref}/replay", response_model=ReplayResult, responses=error_responses(404, 422))
def replay_destination(ref: Ref, project: CurrentProject, state: State) -> Any:
    count = delivery.replay_destination(state.engine, project_id=project.id, destination=ref)
    state.wake_workers()
    return {"replayed": count}
