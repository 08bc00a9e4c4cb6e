"""/healthz and /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from s3dest.api.deps import MetricsReader, State
from s3dest.api.errors import error_responses
from s3dest.delivery import service as delivery
from s3dest.destinations import service as destinations
from s3dest.metrics import View, render
from s3dest.store.engine import ping

router = APIRouter(tags=["system"])


@router.get("/healthz")
def healthz(state: State) -> dict[str, str]:
    """Liveness: the process answers and its database does too (no auth)."""
    ping(state.engine)
    return {"status": "ok"}


@router.get("/metrics", response_class=Response, responses=error_responses(401, 429))
def metrics(reader: MetricsReader, state: State) -> Response:
    """Prometheus text. A project's API key sees only its own destinations' series (and
    its own queue depth); the operator token (S3DEST_OPERATOR_TOKEN) sees every project's."""
    names = destinations.labels(state.engine, project_id=reader)
    pending = delivery.pending_counts(
        state.engine, destination_ids=None if reader is None else set(names)
    )
    view = View(
        destinations=names,
        pending=pending,
        waiting=frozenset(s.value for s in delivery.WAITING),
        project_id=reader,
    )
    return Response(render(view), media_type=CONTENT_TYPE_LATEST)
