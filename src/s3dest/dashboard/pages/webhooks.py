"""The Webhooks page: the project's endpoints with their latest deliveries; add (the
secret is shown once, on the page that answers the form), test, delete. Through
s3dest.notifications.service, as the REST API."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from s3dest.dashboard.session import Session
from s3dest.dashboard.web import (
    PageRoute,
    SessionDep,
    app_state,
    csrf_form,
    form_text,
    redirect,
    render,
)
from s3dest.errors import Conflict, InvalidInput, NotFound, TooBusy
from s3dest.notifications import service

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _page(
    request: Request,
    session: Session,
    *,
    created: service.Created | None = None,
    tested: tuple[str, service.Tested] | None = None,
    error: str | None = None,
    form: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    engine = app_state(request).engine
    hooks = service.list_(engine, project_id=session.project_id)
    recent = {
        h.id: service.deliveries(engine, project_id=session.project_id, webhook_id=h.id, limit=5)
        for h in hooks
    }
    return render(
        request,
        "webhooks.html",
        session=session,
        status=status,
        nav="webhooks",
        title="Webhooks",
        hooks=hooks,
        recent=recent,
        event_types=service.EVENT_TYPES,
        created=created,
        tested=tested,
        error=error,
        # The changes are ticked; the daily summary is asked for.
        form=form or {"url": "", "description": "", "events": list(service.DEFAULT_EVENTS)},
    )


@router.get("/webhooks")
async def webhooks_page(request: Request, session: SessionDep) -> Response:
    return await run_in_threadpool(_page, request, session)


@router.post("/webhooks")
async def add_webhook(request: Request, session: SessionDep) -> Response:
    form = await csrf_form(request, session)
    state = app_state(request)
    url = form_text(form, "url")
    description = form_text(form, "description")
    events = [e for e in form.getlist("events") if isinstance(e, str)]
    try:
        created = await run_in_threadpool(
            lambda: service.create(
                state.engine,
                state.box,
                project_id=session.project_id,
                url=url,
                events=events or [],
                description=description,
                actor=session.actor,
            )
        )
    except (InvalidInput, Conflict) as exc:
        fields = getattr(exc, "fields", {}) or {}
        message = "; ".join(f"{k}: {v}" for k, v in fields.items()) or exc.message
        again = {"url": url, "description": description, "events": events}
        return await run_in_threadpool(
            lambda: _page(request, session, error=message, form=again, status=422)
        )
    # The secret is shown on this answer only, never put in a cookie or a redirect.
    return await run_in_threadpool(lambda: _page(request, session, created=created))


@router.post("/webhooks/{webhook_id}/test")
async def test_webhook(webhook_id: str, request: Request, session: SessionDep) -> Response:
    await csrf_form(request, session)
    state = app_state(request)
    try:
        # Within the connection tests' bounds, on their threads, as the REST API's test.
        result = await state.fair.connection_test(
            session.project_id,
            lambda: service.test(
                state.engine, state.box, project_id=session.project_id, webhook_id=webhook_id
            ),
        )
    except (NotFound, TooBusy) as exc:
        return redirect(request, "/webhooks", flash=("error", exc.message))
    return await run_in_threadpool(lambda: _page(request, session, tested=(webhook_id, result)))


@router.post("/webhooks/{webhook_id}/delete")
async def delete_webhook(webhook_id: str, request: Request, session: SessionDep) -> Response:
    await csrf_form(request, session)
    engine = app_state(request).engine
    try:
        row = await run_in_threadpool(
            lambda: service.delete(
                engine, project_id=session.project_id, webhook_id=webhook_id, actor=session.actor
            )
        )
    except NotFound as exc:
        return redirect(request, "/webhooks", flash=("error", exc.message))
    return redirect(request, "/webhooks", flash=("ok", f"Webhook {row.url} deleted."))
