"""/v1/destinations: create, list, show, update, delete, test (saved or before saving),
replay."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel, Field

from s3dest.access.audit import Actor
from s3dest.api.deps import CurrentActor, CurrentProject, State
from s3dest.api.errors import error_responses
from s3dest.delivery import service as delivery
from s3dest.destinations import drafts, service
from s3dest.destinations.schemas import DestinationCreate, DestinationPublic, DestinationUpdate
from s3dest.runtime import AppState

router = APIRouter(prefix="/v1/destinations", tags=["destinations"], responses=error_responses(401))


Ref = Annotated[str, Path(description="the destination's id or its name")]


class DestinationList(BaseModel):
    destinations: list[DestinationPublic]


class TestResult(BaseModel):
    ok: bool = Field(description="true when S3 accepted the test object")
    key: str = Field(description="the test object's key, under s3dest-connection-test/")
    diagnosis: str | None = Field(description="when not ok: what is wrong and how to fix it")
    etag: str | None


class ReplayResult(BaseModel):
    replayed: int


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=DestinationPublic,
    responses=error_responses(409, 422),
)
def create_destination(
    body: DestinationCreate, project: CurrentProject, actor: CurrentActor, state: State
) -> Any:
    saved = service.create(state.engine, state.box, project_id=project.id, body=body, actor=actor)
    return DestinationPublic.from_row(saved.row, saved.warnings)


@router.get("", response_model=DestinationList)
def list_destinations(project: CurrentProject, state: State) -> Any:
    rows = service.list_(state.engine, project_id=project.id)
    return DestinationList(destinations=[DestinationPublic.from_row(row) for row in rows])


@router.get("/{ref}", response_model=DestinationPublic, responses=error_responses(404, 422))
def show_destination(ref: Ref, project: CurrentProject, state: State) -> Any:
    return DestinationPublic.from_row(service.get(state.engine, project_id=project.id, ref=ref))


@router.patch("/{ref}", response_model=DestinationPublic, responses=error_responses(404, 409, 422))
def update_destination(
    ref: Ref, body: DestinationUpdate, project: CurrentProject, actor: CurrentActor, state: State
) -> Any:
    saved = service.update(
        state.engine, state.box, project_id=project.id, ref=ref, body=body, actor=actor
    )
    state.wake_workers()
    return DestinationPublic.from_row(saved.row, saved.warnings)


@router.delete(
    "/{ref}", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(404, 409, 422)
)
def delete_destination(
    ref: Ref,
    project: CurrentProject,
    actor: CurrentActor,
    state: State,
    force: bool = Query(False, description="discard messages still waiting for it"),
) -> None:
    service.delete(state.engine, project_id=project.id, ref=ref, force=force, actor=actor)


@router.post("/test", response_model=TestResult, responses=error_responses(422, 429))
async def test_new_destination(
    body: DestinationCreate, project: CurrentProject, actor: CurrentActor, state: State
) -> Any:
    # Test before saving: the dashboard form's code path (drafts.test_draft), on the
    # connection tests' threads and within their bounds. Nothing is stored.
    result = await state.fair.connection_test(
        project.id, _draft_test, state, project.id, body, actor
    )
    return result.as_dict()


def _draft_test(
    state: AppState, project_id: str, body: DestinationCreate, actor: Actor
) -> service.TestResult:
    _row, result = drafts.test_draft(
        state.engine, state.box, project_id=project_id, body=body, ref=None, actor=actor
    )
    return result


@router.post("/{ref}/test", response_model=TestResult, responses=error_responses(404, 422, 429))
async def test_destination(
    ref: Ref, project: CurrentProject, actor: CurrentActor, state: State
) -> Any:
    # On the connection tests' own threads, within their per-project and global bounds:
    # a test waits up to its timeout on an endpoint that does not answer.
    result = await state.fair.connection_test(
        project.id, _connection_test, state, project.id, ref, actor
    )
    if result.ok:
        state.wake_workers()
    return result.as_dict()


def _connection_test(
    state: AppState, project_id: str, ref: str, actor: Actor
) -> service.TestResult:
    return service.connection_test(
        state.engine, state.box, project_id=project_id, ref=ref, actor=actor
    )


@router.post("/{ref}/replay", response_model=ReplayResult, responses=error_responses(404, 422))
def replay_destination(ref: Ref, project: CurrentProject, actor: CurrentActor, state: State) -> Any:
    count = delivery.replay_destination(
        state.engine, project_id=project.id, destination=ref, actor=actor
    )
    state.wake_workers()
    return {"replayed": count}
