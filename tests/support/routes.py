"""Every route of the application `s3dest serve` runs, read from its own route table
(`app.routes` of `s3dest.app.create_app`), so that tests which claim "every route" cover a
route added tomorrow without anyone listing it (issue 17: CSRF was tried on 4 of 11
dashboard POST routes, sessions on 2 of 8 pages, 413 on five routes listed by hand).

The app is built in-process over a throwaway SQLite data directory, without workers; the
tests then send their requests to a real `s3dest serve` of the same code.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import Mount, Route

_PARAM = re.compile(r"\{([^}:]+)(?::[^}]+)?\}")


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # the route's template, e.g. /destinations/{ref}/edit
    dashboard: bool  # a dashboard page or /ui/api/ helper (PageRoute), not the REST API
    #: the first content type of the request body the OpenAPI documents (REST API routes
    #: only; None: no body)
    body_type: str | None = None

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    def url(self, default: str = "nope", **values: str) -> str:
        """The path with each parameter filled in from `values` (by name), else `default`."""
        return _PARAM.sub(lambda m: values.get(m.group(1), default), self.path)


@cache
def app_endpoints() -> tuple[Endpoint, ...]:
    """Every (method, path) the app answers, HEAD aside; static files' mount aside."""
    from s3dest.s3 import egress

    # open_state installs the process's endpoint policy from the Settings it is given. The
    # tests' in-process writers need their local S3 servers' allow-list back: left as the
    # fresh Settings' empty one, every later writer test of this worker was refused.
    previous = egress.current()
    try:
        return _read_route_table()
    finally:
        egress.configure(previous)


def _read_route_table() -> tuple[Endpoint, ...]:
    from s3dest.app import create_app
    from s3dest.dashboard.web import PageRoute
    from s3dest.runtime import open_state
    from s3dest.settings import Settings

    with tempfile.TemporaryDirectory(prefix="s3dest-routes-") as tmp:
        state = open_state(Settings(data_dir=Path(tmp) / "data"))
        try:
            app = create_app(state, workers=False)
            bodies = {
                (method.upper(), path): next(iter(operation["requestBody"]["content"]))
                for path, operations in app.openapi()["paths"].items()
                for method, operation in operations.items()
                if "requestBody" in operation
            }
            endpoints: list[Endpoint] = []
            # FastAPI keeps included routers as nodes of `app.routes`; iter_route_contexts
            # walks them down to each route, with its path as mounted.
            for context in iter_route_contexts(app.routes):
                route = context.original_route
                if isinstance(route, Mount):
                    continue
                assert isinstance(route, Route | APIRoute), route
                path = context.path
                assert path, route
                for method in sorted(context.methods or ()):
                    if method == "HEAD":
                        continue
                    endpoints.append(
                        Endpoint(
                            method=method,
                            path=path,
                            dashboard=isinstance(route, PageRoute),
                            body_type=bodies.get((method, path)),
                        )
                    )
        finally:
            state.engine.dispose()
    return tuple(endpoints)


def dashboard_endpoints() -> list[Endpoint]:
    found = [e for e in app_endpoints() if e.dashboard]
    assert found, "the route table lists no dashboard route: the enumeration is broken"
    return found


def api_endpoints() -> list[Endpoint]:
    """The REST API's routes and the documentation's (/openapi.json, /docs, ...)."""
    found = [e for e in app_endpoints() if not e.dashboard]
    assert found, "the route table lists no API route: the enumeration is broken"
    return found
