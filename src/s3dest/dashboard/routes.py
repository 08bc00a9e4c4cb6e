"""The dashboard's pages: sign-in, destinations, deliveries, one message, the manifest.

Every operation goes through the same services as the REST API (destinations.service,
keys, delivery.service, manifest_service); this module only turns forms into their inputs and
their results into pages.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from s3dest.dashboard.session import PRE_COOKIE, SESSION_COOKIE, Session
from s3dest.dashboard.web import (
    NeedSignIn,
    PageError,
    PageRoute,
    app_state,
    check_csrf_header,
    clear_cookie,
    csrf_form,
    dashboard,
    error_lines,
    form_text,
    redirect,
    render,
    safe_next,
    session_cookie,
)
from s3dest.delivery import service as delivery
from s3dest.delivery.service import STATES, WAITING, MessageState
from s3dest.destinations import service
from s3dest.destinations.masking import mask_access_key_id
from s3dest.destinations.validation import WRITE_MODES
from s3dest.errors import Conflict, InvalidInput, KeyTemplateInvalid, ManifestInvalid, NotFound
from s3dest.keys import DEFAULT_KEY_TEMPLATE, preview_key, time_namespace
from s3dest.manifest import parse_manifest
from s3dest.manifest_service import apply_manifest, current_manifest
from s3dest.s3.diagnosis import putobject_policy
from s3dest.storage_class import STORAGE_CLASSES
from s3dest.store.destinations import DestinationRow
from s3dest.store.projects import authenticate

router = APIRouter(route_class=PageRoute, include_in_schema=False)

MAX_MANIFEST_BYTES = 1024 * 1024


def current_session(request: Request) -> Session:
    """The signed-in session, or NeedSignIn (→ the sign-in page)."""
    state = app_state(request)
    session = dashboard(request).signer.session(state.engine, request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise NeedSignIn()
    request.state.session = session
    return session


SessionDep = Annotated[Session, Depends(current_session)]


# -- sign-in -------------------------------------------------------------------------------


def _signin_page(
    request: Request, *, error: str | None = None, next_url: str = "", status: int = 200
) -> Response:
    signer = dashboard(request).signer
    if signer.pre_sid(request.cookies.get(PRE_COOKIE)) is None:
        token = signer.new_pre_session()
        request.state.pre_token = token
        request.state.pre_sid = signer.pre_sid(token)
    return render(
        request,
        "signin.html",
        session=None,
        status=status,
        title="Sign in",
        error=error,
        next_url=next_url,
    )


@router.get("/")
def home(request: Request) -> Response:
    state = app_state(request)
    signed_in = dashboard(request).signer.session(state.engine, request.cookies.get(SESSION_COOKIE))
    return redirect(request, "/destinations" if signed_in else "/signin")


@router.get("/signin")
def signin_form(request: Request, next: str = "") -> Response:
    state = app_state(request)
    if dashboard(request).signer.session(state.engine, request.cookies.get(SESSION_COOKIE)):
        return redirect(request, safe_next(next, "/destinations"))
    return _signin_page(request, next_url=safe_next(next, ""))


@router.post("/signin")
async def signin(request: Request) -> Response:
    form = await csrf_form(request, None)
    state = app_state(request)
    api_key = form_text(form, "api_key").strip()
    next_url = safe_next(form_text(form, "next"), "/destinations")
    if not api_key:
        return _signin_page(
            request, error="Enter your project's API key.", next_url=next_url, status=400
        )
    project = await run_in_threadpool(authenticate, state.engine, api_key)
    if project is None:
        return _signin_page(
            request,
            error="That API key is not valid (or was revoked). Check it and try again.",
            next_url=next_url,
            status=401,
        )
    response = redirect(request, next_url)
    session_cookie(request, response, dashboard(request).signer.new_session(project.id, api_key))
    clear_cookie(request, response, PRE_COOKIE)
    return response


@router.post("/signout")
async def signout(request: Request, session: SessionDep) -> Response:
    await csrf_form(request, session)
    dashboard(request).signer.revoke(session.sid)
    response = redirect(request, "/signin", flash=("ok", "You are signed out."))
    clear_cookie(request, response, SESSION_COOKIE)
    return response


# -- destinations --------------------------------------------------------------------------


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
        "access_key_id": mask_access_key_id(row.access_key_id),
        "policy": putobject_policy(row.bucket),
        "command": command,
    }


@router.get("/destinations")
def destinations_page(request: Request, session: SessionDep) -> Response:
    state = app_state(request)
    rows = service.list_(state.engine, session.project_id)
    counts = delivery.counts(state.engine, project_id=session.project_id)
    items = [
        {
            "d": service.public(row),
            "counts": counts.get(row.id, {}),
            "checklist": checklist(row) if row.status == "failing" else None,
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


def _form_context(
    *,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
    message: str | None = None,
    project_id: str,
) -> dict[str, Any]:
    template = values.get("keyTemplate") or None
    preview: dict[str, Any]
    try:
        result = preview_key(template, None, project_id=project_id)
        preview = {"ok": True, "sampleKeys": result["sampleKeys"], "warnings": result["warnings"]}
    except KeyTemplateInvalid as exc:
        preview = {"ok": False, "error": exc.fields.get("keyTemplate", exc.message)}
    return {
        "values": values,
        "errors": errors or {},
        "message": message,
        "storage_classes": STORAGE_CLASSES,
        "write_modes": WRITE_MODES,
        "default_template": DEFAULT_KEY_TEMPLATE,
        "preview": preview,
    }


_TEXT_FIELDS = ("name", "bucket", "region", "keyTemplate", "endpointUrl")


def _posted_values(form: Any) -> dict[str, Any]:
    """What the form showed (never the secrets), to render it again after an error."""
    values: dict[str, Any] = {name: form_text(form, name) for name in _TEXT_FIELDS}
    values["accessKeyIdInput"] = form_text(form, "accessKeyId")
    values["storageClass"] = form_text(form, "storageClass") or "STANDARD"
    values["writeMode"] = form_text(form, "writeMode") or "overwrite"
    values["enabled"] = form.get("enabled") is not None
    return values


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
    }
    return render(
        request,
        "destination_form.html",
        session=session,
        nav="destinations",
        title="New destination",
        mode="create",
        destination=None,
        **_form_context(values=values, project_id=session.project_id),
    )


@router.post("/destinations/new")
async def create_destination(request: Request, session: SessionDep) -> Response:
    form = await csrf_form(request, session)
    state = app_state(request)
    body: dict[str, Any] = {
        "name": form_text(form, "name"),
        "bucket": form_text(form, "bucket"),
        "region": form_text(form, "region"),
        "accessKeyId": form_text(form, "accessKeyId"),
        "secretAccessKey": form_text(form, "secretAccessKey"),
        "storageClass": form_text(form, "storageClass") or None,
        "writeMode": form_text(form, "writeMode") or "overwrite",
        "enabled": form.get("enabled") is not None,
    }
    for optional in ("sessionToken", "keyTemplate", "endpointUrl"):
        text = form_text(form, optional)
        if text.strip():
            body[optional] = text
    try:
        saved = await run_in_threadpool(
            service.create, state.engine, state.box, session.project_id, body
        )
    except (InvalidInput, Conflict) as exc:
        errors = exc.fields if isinstance(exc, InvalidInput) else {"name": exc.message}
        message = exc.message
        context = await run_in_threadpool(
            lambda: _form_context(
                values=_posted_values(form),
                errors=errors,
                message=message,
                project_id=session.project_id,
            )
        )
        return render(
            request,
            "destination_form.html",
            session=session,
            status=409 if isinstance(exc, Conflict) else 422,
            nav="destinations",
            title="New destination",
            mode="create",
            destination=None,
            **context,
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
    }


@router.get("/destinations/{ref}/edit")
def edit_destination_form(ref: str, request: Request, session: SessionDep) -> Response:
    state = app_state(request)
    row = service.get(state.engine, session.project_id, ref)
    return render(
        request,
        "destination_form.html",
        session=session,
        nav="destinations",
        title=f"Edit {row.name}",
        mode="edit",
        destination=service.public(row),
        checklist=checklist(row) if row.status == "failing" else None,
        **_form_context(values=_edit_values(row), project_id=session.project_id),
    )


@router.post("/destinations/{ref}/edit")
async def update_destination(ref: str, request: Request, session: SessionDep) -> Response:
    form = await csrf_form(request, session)
    state = app_state(request)
    row = await run_in_threadpool(service.get, state.engine, session.project_id, ref)
    body: dict[str, Any] = {
        "name": form_text(form, "name"),
        "bucket": form_text(form, "bucket"),
        "region": form_text(form, "region"),
        "keyTemplate": form_text(form, "keyTemplate")
        if form_text(form, "keyTemplate").strip()
        else None,
        "endpointUrl": form_text(form, "endpointUrl")
        if form_text(form, "endpointUrl").strip()
        else None,
        "storageClass": form_text(form, "storageClass") or None,
        "writeMode": form_text(form, "writeMode") or None,
        "enabled": form.get("enabled") is not None,
    }
    # Write-only fields: blank keeps what is stored.
    for secret in ("accessKeyId", "secretAccessKey"):
        if form_text(form, secret).strip():
            body[secret] = form_text(form, secret)
    if form.get("clearSessionToken") is not None:
        body["sessionToken"] = None
    elif form_text(form, "sessionToken").strip():
        body["sessionToken"] = form_text(form, "sessionToken")
    try:
        saved = await run_in_threadpool(
            service.update_, state.engine, state.box, session.project_id, row.id, body
        )
    except (InvalidInput, Conflict) as exc:
        errors = exc.fields if isinstance(exc, InvalidInput) else {"name": exc.message}
        message = exc.message
        context = await run_in_threadpool(
            lambda: _form_context(
                values=_posted_values(form),
                errors=errors,
                message=message,
                project_id=session.project_id,
            )
        )
        return render(
            request,
            "destination_form.html",
            session=session,
            status=409 if isinstance(exc, Conflict) else 422,
            nav="destinations",
            title=f"Edit {row.name}",
            mode="edit",
            destination=service.public(row),
            checklist=None,
            **context,
        )
    state.wake_workers()
    flashes = [("ok", f"Destination {saved.row.name} saved.")]
    flashes += [("warning", warning) for warning in saved.warnings]
    return redirect(request, f"/destinations#dest-{saved.row.id}", flash=flashes)


@router.get("/destinations/{ref}/delete")
def delete_destination_form(ref: str, request: Request, session: SessionDep) -> Response:
    state = app_state(request)
    row = service.get(state.engine, session.project_id, ref)
    counts = delivery.counts(state.engine, project_id=session.project_id).get(row.id, {})
    return render(
        request,
        "destination_delete.html",
        session=session,
        nav="destinations",
        title=f"Delete {row.name}",
        destination=service.public(row),
        pending=sum(counts.get(s, 0) for s in WAITING),
        error=None,
    )


@router.post("/destinations/{ref}/delete")
async def delete_destination(ref: str, request: Request, session: SessionDep) -> Response:
    form = await csrf_form(request, session)
    state = app_state(request)
    row = await run_in_threadpool(service.get, state.engine, session.project_id, ref)
    force = form.get("force") is not None
    try:
        await run_in_threadpool(
            service.delete, state.engine, session.project_id, row.id, force=force
        )
    except Conflict as exc:
        counts = delivery.counts(state.engine, project_id=session.project_id).get(row.id, {})
        return render(
            request,
            "destination_delete.html",
            session=session,
            status=409,
            nav="destinations",
            title=f"Delete {row.name}",
            destination=service.public(row),
            pending=sum(counts.get(s, 0) for s in WAITING),
            error=exc.message,
        )
    return redirect(request, "/destinations", flash=("ok", f"Destination {row.name} deleted."))


def _run_test(request: Request, session: Session, ref: str) -> tuple[DestinationRow, Any]:
    state = app_state(request)
    row = service.get(state.engine, session.project_id, ref)
    result = service.connection_test(state.engine, state.box, session.project_id, row.id)
    if result.ok:
        state.wake_workers()
    return row, result


@router.post("/destinations/{ref}/test")
async def test_destination(ref: str, request: Request, session: SessionDep) -> Response:
    """Without JavaScript: run the test and show the result on the destinations page."""
    await csrf_form(request, session)
    row, result = await run_in_threadpool(_run_test, request, session, ref)
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
    row, result = await run_in_threadpool(_run_test, request, session, ref)
    html = (
        dashboard(request)
        .env.get_template("_test_result.html")
        .render(result=result, destination=service.public(row), checklist=checklist(row))
    )
    return JSONResponse({**result.as_dict(), "html": html})


@router.post("/ui/api/key-preview")
async def key_preview(request: Request, session: SessionDep) -> Response:
    """The live preview of the destination form: same rules as POST /v1/key-templates/preview."""
    check_csrf_header(request, session)
    try:
        body = await request.json()
    except ValueError:
        body = None
    template = body.get("keyTemplate") if isinstance(body, dict) else None
    if template is not None and not isinstance(template, str):
        raise PageError(400, "Bad request", "keyTemplate must be a string")
    text = template if template and template.strip() else None
    try:
        result = await run_in_threadpool(preview_key, text, None, project_id=session.project_id)
    except KeyTemplateInvalid as exc:
        return JSONResponse(
            {"ok": False, "error": exc.fields.get("keyTemplate", exc.message), "default": not text}
        )
    return JSONResponse(
        {
            "ok": True,
            "sampleKeys": result["sampleKeys"],
            "warnings": result["warnings"],
            "default": not text,
        }
    )


@router.post("/destinations/{ref}/replay")
async def replay_destination(ref: str, request: Request, session: SessionDep) -> Response:
    form = await csrf_form(request, session)
    state = app_state(request)
    row = await run_in_threadpool(service.get, state.engine, session.project_id, ref)
    count = await run_in_threadpool(
        delivery.replay_destination,
        state.engine,
        project_id=session.project_id,
        destination=row.id,
    )
    state.wake_workers()
    noun = "message" if count == 1 else "messages"
    return redirect(
        request,
        safe_next(form_text(form, "next"), "/deliveries"),
        flash=("ok", f"Replaying {count} parked {noun} of {row.name}."),
    )


# -- deliveries ----------------------------------------------------------------------------


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
    rows = service.list_(engine, pid)
    names = {row.id: row.name for row in rows}
    selected: DestinationRow | None = None
    if destination:
        selected = service.get(engine, pid, destination)
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
        destinations=[service.public(row) for row in rows],
        counts=counts,
        totals=totals,
        states=STATES,
        selected=service.public(selected) if selected else None,
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
            app.engine, session.project_id, record["destination_id"]
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
        destination=service.public(row) if row else None,
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
        )
    except Conflict as exc:
        return redirect(request, target, flash=("error", exc.message))
    app.wake_workers()
    return redirect(request, target, flash=("ok", f"Message {event_id} queued again."))


# -- manifest ------------------------------------------------------------------------------


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
    destination_names = {row.name for row in service.list_(app.engine, session.project_id)}
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
        manifest = await run_in_threadpool(apply_manifest, app.engine, session.project_id, source)
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
