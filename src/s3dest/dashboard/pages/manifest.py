"""The manifest page: the current amp.yaml, its routes, and uploading a new one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from s3dest.dashboard.session import Session
from s3dest.dashboard.web import (
    PageRoute,
    SessionDep,
    app_state,
    csrf_form,
    error_lines,
    form_text,
    redirect,
    render,
)
from s3dest.destinations import service
from s3dest.errors import InvalidInput, ManifestInvalid, NotFound
from s3dest.manifest import parse_manifest
from s3dest.manifest.service import apply_manifest, current_manifest

router = APIRouter(route_class=PageRoute, include_in_schema=False)
MAX_MANIFEST_BYTES = 1024 * 1024


def _manifest_summary(source: str) -> list[dict[str, Any]]:
    try:
        manifest = parse_manifest(source)
    except InvalidInput:
        return []
    return [
        {
            "integration": integ.name,
            "provider": integ.provider,
            "action": obj.action,
            "objectName": obj.object_name,
            "destination": obj.destination,
        }
        for integ in manifest.integrations
        for obj in integ.objects()
    ]


def _manifest_page(
    request: Request,
    session: Session,
    *,
    draft: str | None = None,
    errors: list[str] | None = None,
    message: str | None = None,
    status: int = 200,
) -> Response:
    app = app_state(request)
    try:
        current: str | None = current_manifest(app.engine, session.project_id)
    except NotFound:
        current = None
    shown = draft if draft is not None else current
    marks = error_lines(errors or [])
    destination_names = {
        row.name for row in service.list_(app.engine, project_id=session.project_id)
    }
    return render(
        request,
        "manifest.html",
        session=session,
        status=status,
        nav="manifest",
        title="Manifest (amp.yaml)",
        current=current,
        routes=_manifest_summary(current) if current else [],
        destination_names=destination_names,
        draft=draft if draft is not None else (current or ""),
        lines=(shown or "").splitlines() if errors else [],
        marks=marks,
        errors=errors or [],
        message=message,
    )


@router.get("/manifest")
def manifest_page(request: Request, session: SessionDep) -> Response:
    return _manifest_page(request, session)


@router.post("/manifest")
async def upload_manifest(request: Request, session: SessionDep) -> Response:
    form = await csrf_form(request, session)
    app = app_state(request)
    # Browsers send a textarea's line breaks as CRLF; amp.yaml is stored as typed.
    source = form_text(form, "source").replace("\r\n", "\n")
    upload = form.get("file")
    if isinstance(upload, UploadFile) and upload.filename:
        raw = await upload.read(MAX_MANIFEST_BYTES + 1)
        if len(raw) > MAX_MANIFEST_BYTES:
            return await run_in_threadpool(
                lambda: _manifest_page(
                    request,
                    session,
                    draft=source,
                    errors=[f"{upload.filename} is larger than 1 MB; an amp.yaml is much smaller"],
                    message="The file was not uploaded.",
                    status=413,
                )
            )
        if raw:
            try:
                source = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                return await run_in_threadpool(
                    lambda: _manifest_page(
                        request,
                        session,
                        draft=source,
                        errors=[f"{upload.filename} is not UTF-8 text"],
                        message="The file was not uploaded.",
                        status=422,
                    )
                )
    if not source.strip():
        return await run_in_threadpool(
            lambda: _manifest_page(
                request,
                session,
                draft=source,
                errors=["Paste an amp.yaml into the text box or choose a file."],
                message="Nothing to upload.",
                status=422,
            )
        )
    try:
        manifest = await run_in_threadpool(
            lambda: apply_manifest(app.engine, session.project_id, source, actor=session.actor)
        )
    except ManifestInvalid as exc:
        errors = list(exc.fields.values()) or [exc.message]
        return await run_in_threadpool(
            lambda: _manifest_page(
                request,
                session,
                draft=source,
                errors=errors,
                message="amp.yaml was not saved: fix the errors below and upload it again.",
                status=422,
            )
        )
    count = len(manifest.get("integrations") or [])
    noun = "integration" if count == 1 else "integrations"
    return redirect(request, "/manifest", flash=("ok", f"amp.yaml saved ({count} {noun})."))
