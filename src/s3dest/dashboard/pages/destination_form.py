"""The destination form: new and edit, with the key template's live preview."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from markupsafe import Markup, escape
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from s3dest.batching import COMPRESSIONS, BatchSettings
from s3dest.dashboard.pages.destination_bodies import create_body, update_body
from s3dest.dashboard.pages.destination_test import result_html, run_draft_test
from s3dest.dashboard.pages.destinations import checklist
from s3dest.dashboard.session import Session
from s3dest.dashboard.web import (
    PageError,
    PageRoute,
    SessionDep,
    app_state,
    check_csrf_header,
    csrf_form,
    form_text,
    redirect,
    render,
)
from s3dest.destinations import key_checks, service
from s3dest.destinations.batch_fields import LIMITS
from s3dest.destinations.rules.bucket_options import CANNED_ACLS, SSE_VALUES
from s3dest.destinations.schemas import (
    WRITE_MODES,
    DestinationPublic,
    parse_create,
    parse_update,
)
from s3dest.errors import Conflict, InvalidInput, KeyTemplateInvalid, TooBusy
from s3dest.keys import DEFAULT_KEY_TEMPLATE
from s3dest.manifest.service import routes_by_destination
from s3dest.s3.storage_classes import STORAGE_CLASSES
from s3dest.store.destinations import DestinationRow

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _preview(
    engine: Engine, project_id: str, template: str | None, destination_id: str | None
) -> dict[str, Any]:
    """The preview box's content: the samples' keys and the recent real messages' (of the
    destination being edited; of the project for a new one)."""
    try:
        result = key_checks.preview(
            engine, project_id=project_id, template=template, destination=destination_id
        )
    except KeyTemplateInvalid as exc:
        return {"ok": False, "error": exc.fields.get("keyTemplate", exc.message)}
    return {
        "ok": True,
        "sampleKeys": result["sampleKeys"],
        "recentKeys": result["recentKeys"],
        "warnings": result["warnings"],
    }


def _form_context(
    *,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
    message: str | None = None,
    project_id: str,
    engine: Engine,
    destination_id: str | None = None,
) -> dict[str, Any]:
    template = values.get("keyTemplate") or None
    preview = _preview(engine, project_id, template, destination_id)
    return {
        "values": values,
        "errors": errors or {},
        "message": message,
        "storage_classes": STORAGE_CLASSES,
        "write_modes": WRITE_MODES,
        "sse_values": SSE_VALUES,
        "canned_acls": CANNED_ACLS,
        "compressions": COMPRESSIONS,
        "batch_limits": LIMITS,
        "default_template": DEFAULT_KEY_TEMPLATE,
        "preview": preview,
    }


_TEXT_FIELDS = (
    "name",
    "bucket",
    "region",
    "keyTemplate",
    "endpointUrl",
    "roleArn",
    "serverSideEncryption",
    "kmsKeyId",
    "acl",
    "tags",
)


def _posted_values(form: Any) -> dict[str, Any]:
    """What the form showed (never the secrets), to render it again after an error."""
    values: dict[str, Any] = {name: form_text(form, name) for name in _TEXT_FIELDS}
    values["accessKeyIdInput"] = form_text(form, "accessKeyId")
    values["storageClass"] = form_text(form, "storageClass") or "STANDARD"
    values["writeMode"] = form_text(form, "writeMode") or "overwrite"
    values["enabled"] = form.get("enabled") is not None
    values["bucketKeyEnabled"] = form.get("bucketKeyEnabled") is not None
    values["batch"] = form.get("batch") is not None
    values.update({field: form_text(form, name) for field, name in _BATCH_INPUTS.items()})
    return values


#: The Batching fieldset's values -> its inputs' names (the API's field paths).
_BATCH_INPUTS = {
    "batchMaxMessages": "batch.maxMessages",
    "batchMaxBytes": "batch.maxBytes",
    "batchMaxSeconds": "batch.maxSeconds",
    "batchCompression": "batch.compression",
}


def _batch_values(batch: BatchSettings | None) -> dict[str, Any]:
    """The Batching fieldset for a setting (None: unticked, the defaults filled in, so that
    ticking it shows what it will do)."""
    shown = batch or BatchSettings()
    return {
        "batch": batch is not None,
        "batchMaxMessages": str(shown.max_messages),
        "batchMaxBytes": str(shown.max_bytes),
        "batchMaxSeconds": f"{shown.max_seconds:g}",
        "batchCompression": shown.compression,
    }


async def _refused(
    request: Request, session: Session, form: Any, exc: InvalidInput | Conflict, **page: Any
) -> Response:
    """The form again after a refused save: what was posted (never the secrets), and why."""
    errors = exc.fields if isinstance(exc, InvalidInput) else {"name": exc.message}
    message = exc.message
    destination = page.get("destination")
    context = await run_in_threadpool(
        lambda: _form_context(
            values=_posted_values(form),
            errors=errors,
            message=message,
            project_id=session.project_id,
            engine=app_state(request).engine,
            destination_id=destination.id if destination is not None else None,
        )
    )
    return render(
        request,
        "destination_form.html",
        session=session,
        status=409 if isinstance(exc, Conflict) else 422,
        nav="destinations",
        **page,
        **context,
    )


async def test_in_form(
    request: Request, session: Session, form: Any, *, ref: str | None, **page: Any
) -> Response:
    """Without JavaScript, "Test these settings": the form again, with the test's result
    (secrets typed are not sent back: type them again to save)."""
    try:
        row, result = await run_draft_test(request, session, form, ref)
    except (InvalidInput, Conflict) as exc:
        return await _refused(request, session, form, exc, **page)
    except TooBusy as exc:
        html = f'<p class="result result-error">{escape(exc.message)}</p>'
    else:
        html = result_html(request, row, result, new=ref is None)
    destination = page.get("destination")
    context = await run_in_threadpool(
        lambda: _form_context(
            values=_posted_values(form),
            project_id=session.project_id,
            engine=app_state(request).engine,
            destination_id=destination.id if destination is not None else None,
        )
    )
    return render(
        request,
        "destination_form.html",
        session=session,
        nav="destinations",
        draft_result=Markup(html),  # rendered (and escaped) by _test_result.html
        **page,
        **context,
    )


@router.get("/destinations/new")
def new_destination_form(request: Request, session: SessionDep) -> Response:
    values = {
        "name": "",
        "bucket": "",
        "region": "",
        "accessKeyIdInput": "",
        "keyTemplate": "",
        "endpointUrl": "",
        "storageClass": "STANDARD",
        "writeMode": "overwrite",
        "enabled": True,
        "roleArn": "",
        "serverSideEncryption": "",
        "kmsKeyId": "",
        "bucketKeyEnabled": False,
        "acl": "",
        "tags": "",
        **_batch_values(None),
    }
    return render(
        request,
        "destination_form.html",
        session=session,
        nav="destinations",
        title="New destination",
        mode="create",
        destination=None,
        **_form_context(
            values=values, project_id=session.project_id, engine=app_state(request).engine
        ),
    )


@router.post("/destinations/new")
async def create_destination(request: Request, session: SessionDep) -> Response:
    form = await csrf_form(request, session)
    state = app_state(request)
    if form.get("intent") == "test":
        return await test_in_form(
            request,
            session,
            form,
            ref=None,
            title="New destination",
            mode="create",
            destination=None,
        )
    try:
        body = parse_create(create_body(form))
        saved = await run_in_threadpool(
            lambda: service.create(
                state.engine,
                state.box,
                project_id=session.project_id,
                body=body,
                actor=session.actor,
            )
        )
    except (InvalidInput, Conflict) as exc:
        return await _refused(
            request, session, form, exc, title="New destination", mode="create", destination=None
        )
    state.wake_workers()
    flashes = [("ok", f"Destination {saved.row.name} created.")]
    flashes += [("warning", warning) for warning in saved.warnings]
    return redirect(request, f"/destinations#dest-{saved.row.id}", flash=flashes)


def _edit_values(row: DestinationRow) -> dict[str, Any]:
    return {
        "name": row.name,
        "bucket": row.bucket,
        "region": row.region,
        "accessKeyIdInput": "",
        "keyTemplate": row.key_template or "",
        "endpointUrl": row.endpoint_url or "",
        "storageClass": row.storage_class,
        "writeMode": row.write_mode,
        "enabled": row.enabled,
        "roleArn": row.role_arn or "",
        "serverSideEncryption": row.server_side_encryption or "",
        "kmsKeyId": row.kms_key_id or "",
        "bucketKeyEnabled": bool(row.bucket_key_enabled),
        "acl": row.acl or "",
        "tags": "\n".join(f"{k}={v}" for k, v in (row.tags or {}).items()),
        **_batch_values(row.batch),
    }


@router.get("/destinations/{ref}/edit")
def edit_destination_form(ref: str, request: Request, session: SessionDep) -> Response:
    state = app_state(request)
    row = service.get(state.engine, project_id=session.project_id, ref=ref)
    return render(
        request,
        "destination_form.html",
        session=session,
        nav="destinations",
        title=f"Edit {row.name}",
        mode="edit",
        destination=DestinationPublic.from_row(row),
        checklist=checklist(row) if row.status == "failing" else None,
        routes=routes_by_destination(state.engine, session.project_id).get(row.name, []),
        **_form_context(
            values=_edit_values(row),
            project_id=session.project_id,
            engine=state.engine,
            destination_id=row.id,
        ),
    )


@router.post("/destinations/{ref}/edit")
async def update_destination(ref: str, request: Request, session: SessionDep) -> Response:
    form = await csrf_form(request, session)
    state = app_state(request)
    row = await run_in_threadpool(service.get, state.engine, project_id=session.project_id, ref=ref)
    if form.get("intent") == "test":
        return await test_in_form(
            request,
            session,
            form,
            ref=row.id,
            title=f"Edit {row.name}",
            mode="edit",
            destination=DestinationPublic.from_row(row),
            checklist=None,
        )
    try:
        body = parse_update(update_body(form))
        saved = await run_in_threadpool(
            lambda: service.update(
                state.engine,
                state.box,
                project_id=session.project_id,
                ref=row.id,
                body=body,
                actor=session.actor,
            )
        )
    except (InvalidInput, Conflict) as exc:
        return await _refused(
            request,
            session,
            form,
            exc,
            title=f"Edit {row.name}",
            mode="edit",
            destination=DestinationPublic.from_row(row),
            checklist=None,
        )
    state.wake_workers()
    flashes = [("ok", f"Destination {saved.row.name} saved.")]
    flashes += [("warning", warning) for warning in saved.warnings]
    return redirect(request, f"/destinations#dest-{saved.row.id}", flash=flashes)


@router.post("/ui/api/key-preview")
async def key_preview(request: Request, session: SessionDep) -> Response:
    """The live preview of the destination form: same rules as POST /v1/key-templates/preview."""
    check_csrf_header(request, session)
    try:
        body = await request.json()
    except ValueError:
        body = None
    template = body.get("keyTemplate") if isinstance(body, dict) else None
    destination = body.get("destination") if isinstance(body, dict) else None
    if template is not None and not isinstance(template, str):
        raise PageError(400, "Bad request", "keyTemplate must be a string")
    if destination is not None and not isinstance(destination, str):
        raise PageError(400, "Bad request", "destination must be a string")
    text = template if template and template.strip() else None
    engine = app_state(request).engine
    result = await run_in_threadpool(
        _preview, engine, session.project_id, text, destination or None
    )
    return JSONResponse({**result, "default": not text})
