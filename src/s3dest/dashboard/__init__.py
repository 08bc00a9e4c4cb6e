"""The web dashboard: the Destinations page, the delivery monitor and the manifest.

Server-rendered (Jinja2) with one small vendored script; served by `s3dest serve` at `/`
next to the REST API, whose services it uses. `install(app)` adds it to an app.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from s3dest.dashboard.session import Signer, load_secret
from s3dest.dashboard.web import STATIC_DIR, STATIC_PREFIX, Dashboard, make_env, static_version
from s3dest.runtime import AppState

__all__ = ["install"]


def install(app: FastAPI) -> None:
    """Add the dashboard's pages, its JSON helpers (/ui/api/) and static files (/ui/static/)."""
    from s3dest.dashboard.pages import routers

    state: AppState = app.state.s3dest
    app.state.s3dest_dashboard = Dashboard(
        signer=Signer(load_secret(state.settings)),
        env=make_env(),
        static_version=static_version(),
    )
    for router in routers:
        app.include_router(router)
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="dashboard-static")
