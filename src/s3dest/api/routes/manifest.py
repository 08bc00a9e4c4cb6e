"""/v1/manifest: the project's amp.yaml."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from s3dest.api.deps import CurrentActor, CurrentProject, State
from s3dest.api.errors import error_responses
from s3dest.manifest import parse_manifest
from s3dest.manifest.service import apply_manifest, current_manifest

router = APIRouter(
    prefix="/v1/manifest", tags=["manifest"], responses=error_responses(401, 404, 413, 422, 503)
)

_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/yaml": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}


class ManifestApplied(BaseModel):
    manifest: dict[str, Any]


class ManifestView(BaseModel):
    manifest: dict[str, Any]
    source: str


# GET answers YAML or JSON by the Accept header: both documented, the JSON one by its model.
# The YAML answer is described as the document it is (an object), not as a string: a client
# that parses YAML (schemathesis does) gets a mapping, and a string schema refused it.
_GET_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": ManifestView,
        "content": {
            "application/yaml": {
                "schema": {
                    "type": "object",
                    "description": "amp.yaml as it was uploaded, comments included",
                }
            }
        },
    }
}


@router.put("", openapi_extra=_BODY, response_model=ManifestApplied)
async def put_manifest(
    request: Request, project: CurrentProject, actor: CurrentActor, state: State
) -> Any:
    """Upload amp.yaml (YAML or JSON); validated, and every destination must exist."""
    source = await request.body()  # bytes: not UTF-8 is a 422 naming the line
    manifest = await run_in_threadpool(
        lambda: apply_manifest(state.engine, project.id, source, actor=actor)
    )
    return {"manifest": manifest}


@router.get("", responses=_GET_RESPONSES)
def get_manifest(request: Request, project: CurrentProject, state: State) -> Response:
    source = current_manifest(state.engine, project.id)
    if "application/json" in request.headers.get("accept", ""):
        body = {"manifest": parse_manifest(source).to_dict(), "source": source}
        return Response(orjson.dumps(body), media_type="application/json")
    return Response(source, media_type="application/yaml")
