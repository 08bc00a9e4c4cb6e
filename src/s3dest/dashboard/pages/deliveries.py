"""The delivery monitor and one message's page (with replay)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from s3dest.dashboard.web import (
    PageError,
    PageRoute,
    SessionDep,
    app_state,
    csrf_form,
    form_text,
    redirect,
    render,
    safe_next,
)
from s3dest.delivery import service as delivery
from s3dest.delivery.service import STATES, MessageState
from s3dest.destinations import service
from s3dest.destinations.schemas import DestinationPublic
from s3dest.errors import Conflict, NotFound
from s3dest.keys import time_namespace
from s3dest.store.destinations import DestinationRow

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _latency(record: dict[str, Any]) -> float | None:
    if record.get("delivered_at") is None:
        return None
    return float(record["delivered_at"]) - float(record["accepted_at"])


def _decorate(records: list[dict[str, Any]], names: dict[str, str]) -> list[dict[str, Any]]:
    for record in records:
        record["destination_name"] = names.get(record["destination_id"], "(deleted)")
        record["latency"] = _latency(record)
    return records


@router.get("/deliveries")
def deliveries_page(
    request: Request, session: SessionDep, destination: str = "", state: str = ""
) -> Response:
    app = app_state(request)
    engine, pid = app.engine, session.project_id
    rows = service.list_(engine, project_id=pid)
    names = {row.id: row.name for row in rows}
    selected: DestinationRow | None = None
    if destination:
        selected = service.get(engine, project_id=pid, ref=destination)
    if state and state not in STATES:
        raise PageError(400, "Bad request", f"unknown state {state!r}; one of {', '.join(STATES)}")
    dest_id = selected.id if selected else None
    counts = delivery.counts(engine, project_id=pid)
    totals = {s: sum(c.get(s, 0) for c in counts.values()) for s in STATES}

    def records(state_name: MessageState, limit: int) -> list[dict[str, Any]]:
        found = delivery.list(
            engine, project_id=pid, destination=dest_id, state=state_name, limit=limit
        )
        return _decorate([delivery.as_dict(r) for r in found], names)

    context: dict[str, Any] = {}
    if state:
        context["filtered"] = records(MessageState(state), 200)
    else:
        context["recent"] = records(MessageState.DELIVERED, 50)
        context["failing"] = records(MessageState.RETRYING, 100) + records(MessageState.HELD, 100)
        context["parked"] = records(MessageState.PARKED, 100)
        context["waiting"] = records(MessageState.QUEUED, 20) + records(MessageState.DELIVERING, 20)
    parked_by_destination = {
        row.id: counts.get(row.id, {}).get(MessageState.PARKED, 0) for row in rows
    }
    return render(
        request,
        "deliveries.html",
        session=session,
        nav="deliveries",
        title="Deliveries",
        destinations=[DestinationPublic.from_row(row) for row in rows],
        counts=counts,
        totals=totals,
        states=STATES,
        selected=DestinationPublic.from_row(selected) if selected else None,
        state_filter=state,
        parked_by_destination=parked_by_destination,
        here=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        **context,
    )


@router.get("/messages/{event_id}")
def message_page(event_id: str, request: Request, session: SessionDep) -> Response:
    app = app_state(request)
    record = delivery.as_dict(
        delivery.get(app.engine, project_id=session.project_id, event_id=event_id)
    )
    try:
        row: DestinationRow | None = service.get(
            app.engine, project_id=session.project_id, ref=record["destination_id"]
        )
    except NotFound:
        row = None
    record["latency"] = _latency(record)
    record["event_time"] = time_namespace(record["event_time_ns"])["rfc3339_nano"]
    record["timestamp"] = str(record["event_time_ns"] // 1_000_000_000)
    for attempt in record["history"]:
        attempt["took"] = float(attempt["finished_at"]) - float(attempt["started_at"])
    return render(
        request,
        "message.html",
        session=session,
        nav="deliveries",
        title=f"Message {event_id}",
        record=record,
        destination=DestinationPublic.from_row(row) if row else None,
    )


@router.post("/messages/{event_id}/replay")
async def replay_message(event_id: str, request: Request, session: SessionDep) -> Response:
    form = await csrf_form(request, session)
    app = app_state(request)
    target = safe_next(form_text(form, "next"), f"/messages/{event_id}")
    try:
        await run_in_threadpool(
            delivery.replay_message,
            app.engine,
            project_id=session.project_id,
            event_id=event_id,
            actor=session.actor,
        )
    except Conflict as exc:
        return redirect(request, target, flash=("error", exc.message))
    app.wake_workers()
    return redirect(request, target, flash=("ok", f"Message {event_id} queued again."))
