"""The Destinations page: the list, and deleting, testing and replaying a destination."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from s3dest.dashboard.session import Session
from s3dest.dashboard.web import (
    PageRoute,
    SessionDep,
    app_state,
    check_csrf_header,
    csrf_form,
    dashboard,
    form_text,
    redirect,
    render,
    safe_next,
)
from s3dest.delivery import service as delivery
from s3dest.delivery.service import STATES, WAITING
from s3dest.destinations import service, uploads
from s3dest.destinations.access_view import policy_inputs
from s3dest.destinations.schemas import DestinationPublic
from s3dest.errors import Conflict, TooBusy
from s3dest.keys import DEFAULT_KEY_TEMPLATE
from s3dest.manifest.service import routes_by_destination
from s3dest.s3.masking import mask_access_key_id
from s3dest.s3.policy import policy_json, required_actions, write_policy
from s3dest.store.destinations import DestinationRow

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def checklist(row: DestinationRow) -> dict[str, Any]:
    """The product page's troubleshooting steps, filled in for this destination."""
    command = (
        f"aws s3api put-object --bucket {row.bucket} --key ampersand-test.json --body test.json"
        f" --region {row.region}"
    )
    if row.endpoint_url:
        command += f" --endpoint-url {row.endpoint_url}"
    return {
        "bucket": row.bucket,
        "region": row.region,
        "endpoint": row.endpoint_url,
        "access_key_id": mask_access_key_id(row.access_key_id) if row.access_key_id else None,
        "role_arn": row.role_arn,
        "actions": required_actions(policy_inputs(row)),
        "policy": policy_json(write_policy(policy_inputs(row))),
        "command": command,
    }


@router.get("/destinations")
def destinations_page(request: Request, session: SessionDep) -> Response:
    state = app_state(request)
    rows = service.list_(state.engine, project_id=session.project_id)
    counts = delivery.counts(state.engine, project_id=session.project_id)
    orphans = uploads.orphan_counts(state.engine, [row.id for row in rows])
    routes = routes_by_destination(state.engine, session.project_id)
    items = [
        {
            "d": DestinationPublic.from_row(row),
            "counts": counts.get(row.id, {}),
            "checklist": checklist(row) if row.status == "failing" else None,
            # Multipart uploads left in the bucket, and the rule that removes them.
            "orphans": orphans.get(row.id, 0),
            "lifecycle": uploads.lifecycle_command(row.bucket) if row.id in orphans else None,
            "routes": routes.get(row.name, []),
        }
        for row in rows
    ]
    return render(
        request,
        "destinations.html",
        session=session,
        nav="destinations",
        title="Destinations",
        items=items,
        states=STATES,
        default_template=DEFAULT_KEY_TEMPLATE,
    )


def _pending(engine: Engine, project_id: str, destination_id: str) -> int:
    """Messages of the destination still waiting to be delivered."""
    counts = delivery.counts(engine, project_id=project_id).get(destination_id, {})
    return sum(counts.get(s, 0) for s in WAITING)


@router.get("/destinations/{ref}/delete")
def delete_destination_form(ref: str, request: Request, session: SessionDep) -> Response:
    state = app_state(request)
    row = service.get(state.engine, project_id=session.project_id, ref=ref)
    return render(
        request,
        "destination_delete.html",
        session=session,
        nav="destinations",
        title=f"Delete {row.name}",
        destination=DestinationPublic.from_row(row),
        pending=_pending(state.engine, session.project_id, row.id),
        error=None,
    )


@router.post("/destinations/{ref}/delete")
async def delete_destination(ref: str, request: Request, session: SessionDep) -> Response:
    form = await csrf_form(request, session)
    state = app_state(request)
    row = await run_in_threadpool(service.get, state.engine, project_id=session.project_id, ref=ref)
    force = form.get("force") is not None
    try:
        await run_in_threadpool(
            service.delete,
            state.engine,
            project_id=session.project_id,
            ref=row.id,
            force=force,
            actor=session.actor,
        )
    except Conflict as exc:
        return render(
            request,
            "destination_delete.html",
            session=session,
            status=409,
            nav="destinations",
            title=f"Delete {row.name}",
            destination=DestinationPublic.from_row(row),
            pending=_pending(state.engine, session.project_id, row.id),
            error=exc.message,
        )
    return redirect(request, "/destinations", flash=("ok", f"Destination {row.name} deleted."))


def _run_test(request: Request, session: Session, ref: str) -> tuple[DestinationRow, Any]:
    state = app_state(request)
    row = service.get(state.engine, project_id=session.project_id, ref=ref)
    result = service.connection_test(
        state.engine, state.box, project_id=session.project_id, ref=row.id, actor=session.actor
    )
    if result.ok:
        state.wake_workers()
    # As the test left it: failing with the diagnosis, or healthy again.
    return service.get(state.engine, project_id=session.project_id, ref=row.id), result


async def _bounded_test(request: Request, session: Session, ref: str) -> tuple[DestinationRow, Any]:
    """`_run_test` on the connection tests' threads, within their bounds (TooBusy beyond)."""
    fair = app_state(request).fair
    return await fair.connection_test(session.project_id, _run_test, request, session, ref)


@router.post("/destinations/{ref}/test")
async def test_destination(ref: str, request: Request, session: SessionDep) -> Response:
    """Without JavaScript: run the test and show the result on the destinations page."""
    await csrf_form(request, session)
    try:
        row, result = await _bounded_test(request, session, ref)
    except TooBusy as exc:
        return redirect(request, "/destinations", flash=("error", exc.message))
    if result.ok:
        flash = (
            "ok",
            f"Test connection to {row.name} succeeded: wrote s3://{row.bucket}/{result.key}",
        )
    else:
        flash = ("error", f"Test connection to {row.name} failed: {result.diagnosis}")
    return redirect(request, f"/destinations#dest-{row.id}", flash=flash)


@router.post("/ui/api/destinations/{ref}/test")
async def test_destination_json(ref: str, request: Request, session: SessionDep) -> Response:
    check_csrf_header(request, session)
    row, result = await _bounded_test(request, session, ref)  # TooBusy: the API's 429
    html = (
        dashboard(request)
        .env.get_template("_test_result.html")
        .render(
            result=result, destination=DestinationPublic.from_row(row), checklist=checklist(row)
        )
    )
    return JSONResponse({**result.as_dict(), "status": row.status, "html": html})


@router.post("/destinations/{ref}/replay")
async def replay_destination(ref: str, request: Request, session: SessionDep) -> Response:
    form = await csrf_form(request, session)
    state = app_state(request)
    row = await run_in_threadpool(service.get, state.engine, project_id=session.project_id, ref=ref)
    count = await run_in_threadpool(
        delivery.replay_destination,
        state.engine,
        project_id=session.project_id,
        destination=row.id,
        actor=session.actor,
    )
    state.wake_workers()
    noun = "message" if count == 1 else "messages"
    return redirect(
        request,
        safe_next(form_text(form, "next"), "/deliveries"),
        flash=("ok", f"Replaying {count} parked {noun} of {row.name}."),
    )
