"""FastAPI dependencies as typed aliases: the state, the API key (with throttling of
failed attempts), its project, the actor for the audit log, the reader of /metrics."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from s3dest.access.audit import Actor
from s3dest.access.throttle import report_failure
from s3dest.errors import TooBusy, Unauthorized
from s3dest.runtime import AppState
from s3dest.store.projects import KeyAuth, Project, authenticate_key, hash_key

_bearer = HTTPBearer(auto_error=False, description="A project API key (s3d_…)")
# A revoked key must stop working in every process within a second (SPEC §5): a process
# trusts what it found for at most half of that, then asks the database again.
CACHE_SECONDS = 0.5
_cache: dict[str, tuple[KeyAuth, float]] = {}
_MAX_CACHED = 10_000


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.s3dest
    return state


State = Annotated[AppState, Depends(get_state)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def client_address(request: Request) -> str:
    """The client's address as the server sees it (uvicorn takes X-Forwarded-For only from
    the proxies in FORWARDED_ALLOW_IPS, by default 127.0.0.1)."""
    return request.client.host if request.client else "unknown"


def _token(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("missing API key: send Authorization: Bearer <api key>")
    return credentials.credentials


def throttled(retry_after: int) -> TooBusy:
    return TooBusy(
        "too many failed authentications from this address; try again in "
        f"{retry_after} s with a valid API key",
        bound="S3DEST_AUTH_FAILURE_LIMIT",
        retry_after=retry_after,
    )


def _key(state: AppState, request: Request, token: str) -> KeyAuth:
    digest = hash_key(token)
    now = time.monotonic()
    cached = _cache.get(digest)
    if cached is not None and cached[1] > now:
        return cached[0]
    client = client_address(request)
    retry_after = state.throttle.retry_after(client, digest)
    if retry_after is not None:
        raise throttled(retry_after)
    found = authenticate_key(state.engine, token)
    if found is None:
        report_failure(state.throttle, surface="api", client=client, presented=token)
        raise Unauthorized("invalid API key")
    state.throttle.succeeded(digest)
    if len(_cache) > _MAX_CACHED:
        _cache.clear()
    _cache[digest] = (found, now + CACHE_SECONDS)
    return found


def current_key(state: State, request: Request, credentials: Credentials) -> KeyAuth:
    return _key(state, request, _token(credentials))


CurrentKey = Annotated[KeyAuth, Depends(current_key)]


def current_project(key: CurrentKey) -> Project:
    return key.project


CurrentProject = Annotated[Project, Depends(current_project)]


def current_actor(key: CurrentKey) -> Actor:
    return Actor.api_key(key.key_id, key.prefix)


CurrentActor = Annotated[Actor, Depends(current_actor)]


def _is_operator(state: AppState, token: str) -> bool:
    expected = state.settings.operator_token
    if not expected:
        return False
    # Digests of equal length: compare_digest then takes the same time whatever the input.
    return hmac.compare_digest(
        hashlib.sha256(token.encode()).digest(), hashlib.sha256(expected.encode()).digest()
    )


def metrics_reader(state: State, request: Request, credentials: Credentials) -> str | None:
    """Who reads /metrics: None for the operator token (everything), else the project id
    of the API key (its own series only)."""
    token = _token(credentials)
    if _is_operator(state, token):
        return None
    return _key(state, request, token).project.id


MetricsReader = Annotated[str | None, Depends(metrics_reader)]
