"""Rendering, redirects, flashes, CSRF and the error pages of the dashboard.

Every dashboard route uses `PageRoute`, which turns errors into HTML pages (the REST API
keeps its JSON errors): no session → the sign-in page, a bad CSRF token → 403, another
project's id → 404.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException

from s3dest.dashboard.session import (
    FLASH_COOKIE,
    PRE_COOKIE,
    PRE_SECONDS,
    SESSION_COOKIE,
    SESSION_SECONDS,
    Session,
    Signer,
)
from s3dest.errors import Conflict, InvalidInput, NotFound, S3destError, StorageUnavailable
from s3dest.runtime import AppState

log = logging.getLogger("s3dest.dashboard")

HERE = Path(__file__).parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
API_PREFIX = "/ui/api/"
STATIC_PREFIX = "/ui/static"

_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


# -- shared state --------------------------------------------------------------------------


@dataclass
class Dashboard:
    signer: Signer
    env: Environment
    static_version: str


def dashboard(request: Request) -> Dashboard:
    dash: Dashboard = request.app.state.s3dest_dashboard
    return dash


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.s3dest
    return state


def client_address(request: Request) -> str:
    """The client's address as the server sees it (for throttling failed sign-ins)."""
    return request.client.host if request.client else "unknown"


def static_version() -> str:
    digest = hashlib.sha256()
    for path in sorted(STATIC_DIR.iterdir()):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


# -- formatting ----------------------------------------------------------------------------


def fmt_time(value: float | None) -> str:
    if value is None:
        return "—"
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_size(value: int | None) -> str:
    if value is None:
        return "—"
    size = float(value)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"  # pragma: no cover


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 0:
        seconds = 0.0
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _coarse(seconds: float) -> str:
    if seconds < 60:
        return f"{int(seconds)} s"
    return fmt_duration(seconds)


def fmt_ago(value: float | None) -> str:
    if value is None:
        return "—"
    delta = time.time() - value
    if delta < 0:
        return f"in {_coarse(-delta)}"
    if delta < 1:
        return "just now"
    return f"{_coarse(delta)} ago"


def _iso(value: float) -> str:
    return datetime.fromtimestamp(value, UTC).isoformat(timespec="milliseconds")


def fmt_when(value: float | None) -> Markup:
    """An absolute time: UTC in the page, shown in the reader's local time by app.js with
    the UTC time on hover (the page still reads right without JavaScript)."""
    if value is None:
        return Markup("—")
    utc = fmt_time(value)
    return Markup('<time datetime="{}" data-local data-utc="{}" title="{}">{}</time>').format(
        _iso(value), utc, utc, utc
    )


def fmt_since(value: float | None) -> Markup:
    """A relative time ("5 s ago"), the absolute one (local and UTC) on hover."""
    if value is None:
        return Markup("—")
    utc = fmt_time(value)
    return Markup('<time datetime="{}" data-utc="{}" title="{}">{}</time>').format(
        _iso(value), utc, utc, fmt_ago(value)
    )


def make_env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=select_autoescape(["html"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["ts"] = fmt_time
    env.filters["size"] = fmt_size
    env.filters["duration"] = fmt_duration
    env.filters["ago"] = fmt_since
    env.filters["when"] = fmt_when
    env.filters["urlq"] = lambda v: quote(str(v), safe="")
    return env


# -- responses -----------------------------------------------------------------------------


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_cookie(
    request: Request, response: Response, name: str, value: str, max_age: int | None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )


def clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(name, path="/", httponly=True, samesite="lax", secure=_secure(request))


def with_headers(response: Response) -> Response:
    for name, value in _SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def csrf_sid(request: Request, session: Session | None) -> str | None:
    if session is not None:
        return session.sid
    sid: str | None = getattr(request.state, "pre_sid", None)
    if sid:
        return sid
    return dashboard(request).signer.pre_sid(request.cookies.get(PRE_COOKIE))


def render(
    request: Request,
    template: str,
    *,
    session: Session | None,
    status: int = 200,
    nav: str = "",
    title: str = "",
    **context: Any,
) -> HTMLResponse:
    dash = dashboard(request)
    flashes = _take_flashes(request)
    sid = csrf_sid(request, session)
    html = dash.env.get_template(template).render(
        request=request,
        session=session,
        csrf_token=dash.signer.csrf_token(sid) if sid else "",
        flashes=flashes,
        nav=nav,
        title=title,
        static=lambda name: f"{STATIC_PREFIX}/{name}?v={dash.static_version}",
        **context,
    )
    response = HTMLResponse(html, status_code=status)
    if flashes:
        clear_cookie(request, response, FLASH_COOKIE)
    pre_token = getattr(request.state, "pre_token", None)
    if pre_token:
        set_cookie(request, response, PRE_COOKIE, pre_token, PRE_SECONDS)
    with_headers(response)
    return response


def safe_next(value: str | None, default: str) -> str:
    """Only a local path: never a redirect to another site."""
    if not value:
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//"):
        return default
    if "\\" in value or any(ord(c) < 0x20 for c in value):
        return default
    return value


def redirect(
    request: Request,
    url: str,
    *,
    flash: tuple[str, str] | list[tuple[str, str]] | None = None,
) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    if flash:
        items = [flash] if isinstance(flash, tuple) else flash
        data = {"iat": time.time(), "items": [[kind, text[:1500]] for kind, text in items]}
        set_cookie(
            request, response, FLASH_COOKIE, dashboard(request).signer.sign("flash", data), 60
        )
    with_headers(response)
    return response


def _take_flashes(request: Request) -> list[tuple[str, str]]:
    data = dashboard(request).signer.unsign("flash", request.cookies.get(FLASH_COOKIE), 120)
    if not data:
        return []
    items = data.get("items")
    if not isinstance(items, list):
        return []
    return [
        (str(item[0]), str(item[1])) for item in items if isinstance(item, list) and len(item) == 2
    ]


def session_cookie(request: Request, response: Response, token: str) -> None:
    set_cookie(request, response, SESSION_COOKIE, token, SESSION_SECONDS)


# -- errors --------------------------------------------------------------------------------


class NeedSignIn(Exception):
    """No valid session: go to the sign-in page."""


class CsrfFailed(Exception):
    """A POST without a valid CSRF token."""


class PageError(Exception):
    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


CSRF_MESSAGE = (
    "This form was refused because it did not carry the dashboard's security token "
    "(CSRF protection). That happens when a form is sent from another site, or from a page "
    "opened before you signed in again. Go back, reload the page, and submit it again."
)


async def csrf_form(request: Request, session: Session | None) -> FormData:
    """The posted form, after checking its CSRF token (403 without it)."""
    form = await request.form()
    token = form.get("csrf_token")
    if not isinstance(token, str):
        token = request.headers.get("x-csrf-token")
    if not dashboard(request).signer.csrf_ok(csrf_sid(request, session), token):
        raise CsrfFailed()
    return form


def check_csrf_header(request: Request, session: Session) -> None:
    if not dashboard(request).signer.csrf_ok(session.sid, request.headers.get("x-csrf-token")):
        raise CsrfFailed()


def _error_page(request: Request, status: int, title: str, message: str) -> Response:
    if request.url.path.startswith(API_PREFIX):
        return with_headers(
            JSONResponse({"error": {"title": title, "message": message}}, status_code=status)
        )
    session = getattr(request.state, "session", None)
    return render(
        request,
        "error.html",
        session=session,
        status=status,
        title=title,
        error_title=title,
        message=message,
    )


def _sign_in_redirect(request: Request) -> Response:
    if request.url.path.startswith(API_PREFIX):
        return with_headers(
            JSONResponse(
                {"error": {"title": "Signed out", "message": "Sign in again."}}, status_code=401
            )
        )
    target = "/signin"
    if request.method == "GET" and request.url.path not in ("/", "/signin"):
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        target += "?next=" + quote(path, safe="")
    response = redirect(request, target)
    if request.cookies.get(SESSION_COOKIE):
        clear_cookie(request, response, SESSION_COOKIE)
    return response


Endpoint = Callable[[Request], Coroutine[Any, Any, Response]]


class PageRoute(APIRoute):
    """An APIRoute whose errors become HTML pages (or small JSON errors under /ui/api/)."""

    def get_route_handler(self) -> Endpoint:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return with_headers(await original(request))
            except NeedSignIn:
                return _sign_in_redirect(request)
            except CsrfFailed:
                return _error_page(
                    request, 403, "Form refused (missing security token)", CSRF_MESSAGE
                )
            except PageError as exc:
                return _error_page(request, exc.status, exc.title, exc.message)
            except NotFound as exc:
                return _error_page(request, 404, "Not found", exc.message)
            except Conflict as exc:
                return _error_page(request, 409, "Conflict", exc.message)
            except InvalidInput as exc:
                return _error_page(request, 422, "Invalid input", exc.message)
            except StorageUnavailable as exc:  # as the API says it: nothing was stored
                return _error_page(request, 503, "Database unavailable", exc.message)
            except S3destError as exc:
                return _error_page(request, 400, "Request failed", exc.message)
            except RequestValidationError:
                return _error_page(
                    request, 400, "Bad request", "The request is missing something this page needs."
                )
            except StarletteHTTPException as exc:
                return _error_page(request, exc.status_code, "Error", str(exc.detail))
            except Exception as exc:
                log.error("dashboard error", extra={"errorType": type(exc).__name__})
                return _error_page(
                    request,
                    500,
                    "Something went wrong",
                    "s3dest hit an unexpected error; see its logs.",
                )

        return handler


# -- the signed-in session -----------------------------------------------------------------


def current_session(request: Request) -> Session:
    """The signed-in session, or NeedSignIn (→ the sign-in page)."""
    state = app_state(request)
    session = dashboard(request).signer.session(state.engine, request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise NeedSignIn()
    request.state.session = session
    return session


SessionDep = Annotated[Session, Depends(current_session)]


# -- misc ----------------------------------------------------------------------------------

_LINE = re.compile(r"\bline (\d+)(?:, column (\d+))?")


def error_lines(messages: Mapping[str, str] | list[str]) -> dict[int, list[str]]:
    """line number → the messages that point at it ("... line 7, column 11: ...")."""
    texts = list(messages.values()) if isinstance(messages, Mapping) else list(messages)
    out: dict[int, list[str]] = {}
    for text in texts:
        for part in text.split("; amp.yaml "):
            found = _LINE.search(part)
            if found:
                out.setdefault(int(found.group(1)), []).append(part.removeprefix("amp.yaml "))
    return out


def form_text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""
