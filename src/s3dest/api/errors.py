"""One error shape for every route: {"error": {"code", "message", "fields"}}."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from s3dest.api.query import parameter_problems
from s3dest.destinations.schemas import invalid_input_from_errors
from s3dest.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    S3destError,
    StorageUnavailable,
    TooBusy,
    Unauthorized,
)

log = logging.getLogger("s3dest.api")


def error_body(code: str, message: str, fields: dict[str, str] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


_ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "The request cannot be processed as sent.",
    401: "No API key, or not a valid one: send `Authorization: Bearer <api key>`.",
    403: "The API key may not do this.",
    404: "Not found in the API key's project (another project's objects are not found either).",
    409: "Conflicts with the current state; `error.message` says what to do.",
    413: "The request body is too large.",
    422: "Invalid input: `error.fields` names each field that is wrong and how to fix it.",
    429: "A bound is reached (fair share, or failed authentications from this address): "
    "`error.fields` names it; retry after `Retry-After`.",
    503: "The database could not store or read this now; nothing was stored. Try again.",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for error statuses, all with the one error shape
    (the `Error` schema that `s3dest.api.app` adds to the components)."""
    return {
        status: {
            "description": _ERROR_DESCRIPTIONS[status],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for status in statuses
    }


def status_of(exc: S3destError) -> int:
    if isinstance(exc, InvalidInput):
        return 422
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, StorageUnavailable):
        return 503
    if isinstance(exc, PayloadTooLarge):
        return 413
    if isinstance(exc, Unauthorized):
        return 401
    if isinstance(exc, TooBusy):
        return 429
    return 400


def install(app: FastAPI) -> None:
    @app.exception_handler(S3destError)
    async def _ours(_request: Request, exc: S3destError) -> JSONResponse:
        fields = exc.fields if isinstance(exc, InvalidInput) else {}
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
        if isinstance(exc, TooBusy):
            fields = {exc.bound: exc.message}
            headers = {"Retry-After": str(exc.retry_after)}
        return JSONResponse(
            error_body(exc.code, exc.message, fields), status_code=status_of(exc), headers=headers
        )

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, _exc: ClientDisconnect) -> Response:
        # The client went away mid-request (closed the tab, timed out, was cut off for
        # sending too slowly): nothing to answer and nothing wrong with s3dest. One info
        # line; as an unexpected error it was a ~70-line traceback at ERROR. Nothing it
        # sent was accepted: a batch is stored only once its whole body has arrived.
        log.info(
            "client disconnected before its request was read",
            extra={"method": request.method, "path": request.url.path},
        )
        return Response(status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        # A query, header or path parameter is named as such; a body's fields as before.
        invalid = parameter_problems(request, list(exc.errors())) or invalid_input_from_errors(
            exc.errors()
        )
        return JSONResponse(
            error_body("invalid_input", invalid.message, invalid.fields), status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and "parsing the body" in str(exc.detail):
            # FastAPI's answer to a body that is not UTF-8 JSON: one shape for bad input.
            return JSONResponse(
                error_body(
                    "invalid_input",
                    "the body is not valid JSON",
                    {"body": "not valid JSON (UTF-8 text); send a JSON object"},
                ),
                status_code=422,
            )
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(code, str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),  # e.g. Allow on a 405
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        # Never echo the exception text: it might carry input we must not repeat.
        log.error("unexpected error", extra={"errorType": type(exc).__name__})
        return JSONResponse(
            error_body("internal", "s3dest hit an unexpected error; see its logs"),
            status_code=500,
        )
