"""The delivery monitor — overview, search with cursor pages, export, re-delivery — and
one message's page (with replay)."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from s3dest.dashboard import charts
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
from s3dest.delivery import search
from s3dest.delivery import service as delivery
from s3dest.delivery.service import STATES, DeliveryRecord, MessageState
from s3dest.destinations import key_checks, service
from s3dest.destinations.schemas import DestinationPublic
from s3dest.errors import Conflict, InvalidInput, NotFound
from s3dest.keys import time_namespace
from s3dest.store import queue
from s3dest.store.destinations import DestinationRow
from s3dest.store.queue import DeliveryFilter

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


# The search terms of the page, as its query names them (the API's names).
_TERMS = ("eventId", "installationId", "objectName", "key", "since", "until")
PAGE_SIZE = 50
_OVERVIEW_LIMIT = 100  # rows per overview section (each says when there are more)


def _utc(value: str) -> str:
    """A time typed in the page's UTC fields: an offset-less value is UTC."""
    text = value.strip()
    if text and not text.replace(".", "").isdigit() and not _HAS_OFFSET.search(text):
        return text + "Z"
    return text


_HAS_OFFSET = re.compile(r"(Z|z|[+-]\d\d:?\d\d)$")


def _page_filter(
    request: Request, engine: Any, project_id: str, *, with_state: bool = True
) -> tuple[DeliveryFilter, dict[str, str]]:
    """The filter the page's query describes, and its terms (for links that keep them)."""
    q = request.query_params
    terms = {name: q.get(name, "").strip() for name in ("destination", "state", *_TERMS)}
    state = terms["state"]
    if state and state not in STATES:
        raise PageError(400, "Bad request", f"unknown state {state!r}; one of {', '.join(STATES)}")
    f = search.make_filter(
        engine,
        project_id=project_id,
        destination=terms["destination"] or None,
        state=MessageState(state) if state and with_state else None,
        event_id=terms["eventId"],
        installation_id=terms["installationId"],
        object_name=terms["objectName"],
        key_prefix=terms["key"],
        since=_utc(terms["since"]) or None,
        until=_utc(terms["until"]) or None,
    )
    return f, {k: v for k, v in terms.items() if v}


@router.get("/deliveries")
def deliveries_page(request: Request, session: SessionDep) -> Response:
    app = app_state(request)
    engine, pid = app.engine, session.project_id
    rows = service.list_(engine, project_id=pid)
    names = {row.id: row.name for row in rows}
    f, terms = _page_filter(request, engine, pid)
    selected = (
        service.get(engine, project_id=pid, ref=f.destination_id) if f.destination_id else None
    )
    # "Messages by state" counts what the filter selects (all states, so each is a link).
    counts = search.counts(engine, f)
    shown = [row for row in rows if selected is None or row.id == selected.id]
    totals = {s: sum(c.get(s, 0) for c in counts.values()) for s in STATES}
    searching = any(name in terms for name in ("state", *_TERMS))

    def records(found: list[DeliveryRecord]) -> list[dict[str, Any]]:
        return _decorate([delivery.as_dict(r) for r in found], names)

    context: dict[str, Any] = {}
    if searching:
        cursor = request.query_params.get("cursor") or None
        size = _page_size(request.query_params.get("limit", ""))
        if size != PAGE_SIZE:
            terms["limit"] = str(size)
        page = search.search(engine, f, cursor=cursor, limit=size)
        context["filtered"] = records(page.records)
        context["next_url"] = (
            _url("/deliveries", {**terms, "cursor": page.next_cursor}) if page.next_cursor else None
        )
        context["first_url"] = _url("/deliveries", terms) if cursor else None
        context["matching"] = totals[f.state] if f.state is not None else sum(totals.values())
    else:

        def section(state_name: MessageState, limit: int) -> list[dict[str, Any]]:
            one = replace(f, state=state_name)
            return records(search.search(engine, one, limit=limit).records)

        context["recent"] = records(
            delivery.list(
                engine, project_id=pid, destination=f.destination_id, state=MessageState.DELIVERED
            )[:PAGE_SIZE]
        )
        context["failing"] = section(MessageState.RETRYING, _OVERVIEW_LIMIT) + section(
            MessageState.HELD, _OVERVIEW_LIMIT
        )
        context["parked"] = section(MessageState.PARKED, _OVERVIEW_LIMIT)
        context["waiting"] = [
            record
            for waiting in (
                MessageState.BATCHING,
                MessageState.BATCHED,
                MessageState.QUEUED,
                MessageState.DELIVERING,
            )
            for record in section(waiting, 20)
        ]
        context["overview_limit"] = _OVERVIEW_LIMIT
        context.update(_charts(request, engine, pid, f.destination_id, names))
    parked_by_destination = {
        row.id: counts.get(row.id, {}).get(MessageState.PARKED, 0) for row in shown
    }
    return render(
        request,
        "deliveries.html",
        session=session,
        nav="deliveries",
        title="Deliveries",
        destinations=[DestinationPublic.from_row(row) for row in rows],
        shown=[DestinationPublic.from_row(row) for row in shown],
        counts=counts,
        totals=totals,
        states=STATES,
        selected=DestinationPublic.from_row(selected) if selected else None,
        state_filter=terms.get("state", ""),
        terms=terms,
        searching=searching,
        page_size=_page_size(request.query_params.get("limit", "")),
        export_csv=_url("/deliveries/export", {**terms, "format": "csv"}),
        export_jsonl=_url("/deliveries/export", {**terms, "format": "jsonl"}),
        parked_by_destination=parked_by_destination,
        here=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        **context,
    )


def _charts(
    request: Request,
    engine: Any,
    project_id: str,
    destination_id: str | None,
    names: dict[str, str],
) -> dict[str, Any]:
    """The activity charts of the overview (the destination filter applies)."""
    chosen = request.query_params.get("range", "hour")
    r = charts.RANGES.get(chosen)
    if r is None:
        raise PageError(400, "Bad request", "range must be hour or day")
    seen = queue.activity(
        engine,
        project_id,
        since=charts.window(r),
        step=r.step,
        intervals=r.intervals,
        destination_id=destination_id,
    )
    errors, legend = charts.errors_chart(seen, r, names)
    return {
        "chart_range": r,
        "chart_ranges": charts.RANGES.values(),
        "chart_delivered": charts.delivered_chart(seen, r),
        "chart_latency": charts.latency_chart(seen, r),
        "chart_errors": errors,
        "chart_legend": legend,
    }


def _page_size(value: str) -> int:
    if not value:
        return PAGE_SIZE
    if not value.isdigit() or not 1 <= int(value) <= search.MAX_LIMIT:
        raise PageError(400, "Bad request", f"limit must be a number from 1 to {search.MAX_LIMIT}")
    return int(value)


def _url(path: str, params: dict[str, str]) -> str:
    return f"{path}?{urlencode(params)}" if params else path


@router.get("/deliveries/export")
def export_deliveries(request: Request, session: SessionDep) -> Response:
    """The page's search as a download (the API's export, with the session's project)."""
    app = app_state(request)
    f, _terms = _page_filter(request, app.engine, session.project_id)
    fmt = request.query_params.get("format", "csv")
    return StreamingResponse(
        search.export(app.engine, f, fmt),
        media_type=search.EXPORT_TYPES.get(fmt, "text/plain"),
        headers={"Content-Disposition": f'attachment; filename="deliveries.{fmt}"'},
    )


@router.post("/deliveries/redeliver")
async def redeliver(request: Request, session: SessionDep) -> Response:
    """Re-deliver the ticked messages (or the one whose button was pressed), or every
    delivered message of the search's time range."""
    form = await csrf_form(request, session)
    app = app_state(request)
    target = safe_next(form_text(form, "next"), "/deliveries")
    only = form_text(form, "only")
    chosen = [only] if only else [v for v in form.getlist("event_id") if isinstance(v, str)]
    f = None
    if form_text(form, "range") == "1":
        chosen = []
        f, _terms = _page_filter(request, app.engine, session.project_id, with_state=False)
    elif not chosen:
        return redirect(request, target, flash=("error", "Tick the messages to re-deliver first."))
    try:
        done = await run_in_threadpool(
            search.redeliver_selection,
            app.engine,
            project_id=session.project_id,
            actor=session.actor,
            event_ids=chosen if f is None else None,
            f=f,
        )
    except (Conflict, InvalidInput) as exc:
        return redirect(request, target, flash=("error", exc.message))
    if done.queued:
        app.wake_workers()
    said = [("ok", f"{len(done.queued)} message(s) queued to be written again, same keys.")]
    if done.not_retained:
        said.append(
            (
                "error",
                f"{len(done.not_retained)} delivered message(s) cannot be re-sent: their body "
                "is no longer kept (large bodies go once delivered; records after retention).",
            )
        )
    if done.not_delivered:
        said.append(
            ("error", f"{len(done.not_delivered)} message(s) are not delivered: left as is.")
        )
    return redirect(request, target, flash=said)


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
        # PAGE15's hook: the stored body, its ids, and the key the current template gives.
        preview=key_checks.message_preview(
            app.engine,
            project_id=session.project_id,
            event_id=event_id,
            template=row.key_template if row else None,
        ),
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
