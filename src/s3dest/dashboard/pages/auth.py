"""Sign-in and sign-out: the dashboard's session cookie, from a project's API key."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from s3dest.access.throttle import report_failure
from s3dest.dashboard.session import PRE_COOKIE, SESSION_COOKIE
from s3dest.dashboard.web import (
    PageRoute,
    SessionDep,
    app_state,
    clear_cookie,
    client_address,
    csrf_form,
    dashboard,
    form_text,
    redirect,
    render,
    safe_next,
    session_cookie,
)
from s3dest.store.projects import authenticate_key, hash_key

router = APIRouter(route_class=PageRoute, include_in_schema=False)


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
    client = client_address(request)
    digest = hash_key(api_key)
    retry_after = state.throttle.retry_after(client, digest)
    if retry_after is not None:
        response = _signin_page(
            request,
            error=(
                "Too many failed sign-ins from your address. "
                f"Wait {retry_after} seconds, then try again with a valid API key."
            ),
            next_url=next_url,
            status=429,
        )
        response.headers["Retry-After"] = str(retry_after)
        return response
    found = await run_in_threadpool(authenticate_key, state.engine, api_key)
    if found is None:
        report_failure(state.throttle, surface="dashboard", client=client, presented=api_key)
        return _signin_page(
            request,
            error="That API key is not valid (or was revoked). Check it and try again.",
            next_url=next_url,
            status=401,
        )
    state.throttle.succeeded(digest)
    sid = await run_in_threadpool(
        dashboard(request).signer.new_session,
        state.engine,
        project_id=found.project.id,
        key_id=found.key_id,
    )
    response = redirect(request, next_url)
    session_cookie(request, response, sid)
    clear_cookie(request, response, PRE_COOKIE)
    return response


@router.post("/signout")
async def signout(request: Request, session: SessionDep) -> Response:
    await csrf_form(request, session)
    await run_in_threadpool(
        dashboard(request).signer.revoke, app_state(request).engine, session.sid
    )
    response = redirect(request, "/signin", flash=("ok", "You are signed out."))
    clear_cookie(request, response, SESSION_COOKIE)
    return response
