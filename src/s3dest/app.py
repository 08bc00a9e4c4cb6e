"""The application `s3dest serve` runs: the REST API and the dashboard in one ASGI app,
and the lifecycle of the process's delivery worker."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from s3dest import dashboard
from s3dest.api.app import create_api
from s3dest.runtime import AppState, attach_workers


def create_app(state: AppState, *, workers: bool = True) -> FastAPI:
    runner = attach_workers(state) if workers else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Everything loaded so far (modules, models, the app) lives as long as the process:
        # leave it out of the collector's full passes, which otherwise walk it all again
        # and again as each request's objects come and go.
        gc.freeze()
        if runner is not None:
            runner.start()
        try:
            yield
        finally:
            if runner is not None:
                runner.stop()
            state.ingest_processes.close()

    app = create_api(state, lifespan=lifespan)
    dashboard.install(app)
    return app
