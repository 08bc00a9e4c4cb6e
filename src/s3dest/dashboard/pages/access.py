"""The API keys page (list, add, revoke) and the audit log, through s3dest.access."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from s3dest.access import apikeys, audit
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
from s3dest.errors import Conflict, InvalidInput, NotFound

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _keys_page(
    request: Request,
    session: Session,
    *,
    created: Any = None,
    error: str | None = None,
    name: str = "",
    status: int = 200,
) -> Response:
    keys = apikeys.list_(app_state(request).engine, project_id=session.project_id)
    return render(
        request,
        "keys.html",
        session=session,
        status=status,
        nav="keys",
        title="API keys",
        keys=keys,
        created=created,
        error=error,
        name=name,
    )


@router.get("/keys")
async def keys_page(request: Request, session: SessionDep) -> Response:
    return await run_in_threadpool(_keys_page, request, session)


@router.post("/keys")
async def add_key(request: Request, session: SessionDep) -> Response:
    form = await csrf_form(request, session)
    name = form_text(form, "name")
    engine = app_state(request).engine
    try:
        created = await run_in_threadpool(
            lambda: apikeys.create(
                engine, project_id=session.project_id, name=name, actor=session.actor
            )
        )
    except InvalidInput as exc:
        message = "; ".join(exc.fields.values()) or exc.message
        return await run_in_threadpool(
            lambda: _keys_page(request, session, error=message, name=name, status=422)
        )
    # The key is shown on this page only, never put in a cookie or a redirect.
    return await run_in_threadpool(lambda: _keys_page(request, session, created=created))


@router.post("/keys/{key_id}/revoke")
async def revoke_key(key_id: str, request: Request, session: SessionDep) -> Response:
    await csrf_form(request, session)
    engine = app_state(request).engine
    try:
        info = await run_in_threadpool(
            lambda: apikeys.revoke(
                engine, project_id=session.project_id, key_id=key_id, actor=session.actor
            )
        )
    except (Conflict, NotFound) as exc:
        return redirect(request, "/keys", flash=("error", exc.message))
    if info.id == session.key_id:
        # This session was signed in with that key: it has just ended.
        return redirect(request, "/signin", flash=("ok", f"Key {info.prefix}… revoked."))
    return redirect(request, "/keys", flash=("ok", f"Key {info.prefix}… ({info.name}) revoked."))


@router.get("/audit")
async def audit_page(request: Request, session: SessionDep, limit: int = 200) -> Response:
    engine = app_state(request).engine
    rows = await run_in_threadpool(
        lambda: audit.entries(engine, project_id=session.project_id, limit=limit)
    )
    return render(
        request, "audit.html", session=session, nav="audit", title="Audit log", entries=rows
    )
