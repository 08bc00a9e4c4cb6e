"""The REST API's FastAPI application: middleware, routers, error shape, OpenAPI schema."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi_offline import FastAPIOffline

from s3dest import __version__
from s3dest.api import errors, openapi_docs
from s3dest.api.middleware import (
    DocsPolicyMiddleware,
    InputGuardMiddleware,
    RequestIdMiddleware,
)
from s3dest.api.routes import (
    api_keys,
    deliveries,
    destinations,
    keys,
    manifest,
    messages,
    system,
    uploads,
    webhooks,
)
from s3dest.messages import IncomingMessage
from s3dest.runtime import AppState


def create_api(
    state: AppState,
    *,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
) -> FastAPI:
    """The REST API on `state`; `s3dest.app` adds the dashboard and the workers."""
    # /docs and /redoc load Swagger UI and ReDoc from assets packaged with fastapi-offline,
    # not from a CDN: they work offline, and a tenant's browser fetches no third-party script.
    app = FastAPIOffline(
        title="s3dest",
        version=__version__,
        description="Deliver integration data into customers' own S3 buckets.",
        lifespan=lifespan,
    )
    app.state.s3dest = state
    app.add_middleware(
        InputGuardMiddleware,
        ingest_limit=state.settings.max_request_bytes,
        other_limit=8 * 1024 * 1024,
    )
    app.add_middleware(DocsPolicyMiddleware)
    app.add_middleware(RequestIdMiddleware)
    errors.install(app)
    for module in (
        system,
        destinations,
        uploads,
        keys,
        manifest,
        messages,
        deliveries,
        api_keys,
        webhooks,
    ):
        app.include_router(module.router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        message_schema = IncomingMessage.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        for name, definition in message_schema.pop("$defs", {}).items():
            components.setdefault(name, definition)
        components["IncomingMessage"] = message_schema
        error_schema = {
            "type": "object",
            "properties": {
                "error": {
                    "type": "object",
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                    "required": ["code", "message", "fields"],
                }
            },
            "required": ["error"],
        }
        components["Error"] = error_schema
        app.openapi_schema = openapi_docs.describe(schema)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
