"""/healthz and /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from s3dest.api.deps import CurrentProject, State
from s3dest.api.errors import error_responses
from s3dest.metrics import registry
from s3dest.store.engine import ping

router = APIRouter(tags=["system"])


@router.get("/healthz")
def healthz(state: State) -> dict[str, str]:
    """Liveness: the process answers and its database does too (no auth)."""
    ping(state.engine)
    return {"status": "ok"}


@router.get("/metrics", response_class=Response, responses=error_responses(401))
def metrics(_project: CurrentProject) -> Response:
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
