"""FastAPI dependencies as typed aliases."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from s3dest.errors import Unauthorized
from s3dest.runtime import AppState
from s3dest.store.projects import Project, authenticate, hash_key

_bearer = HTTPBearer(auto_error=False, description="A project API key (s3d_…)")
_CACHE_SECONDS = 5.0
_cache: dict[str, tuple[Project, float]] = {}


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.s3dest
    return state


State = Annotated[AppState, Depends(get_state)]


def current_project(
    state: State,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Project:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("missing API key: send Authorization: Bearer <api key>")
    key = credentials.credentials
    digest = hash_key(key)
    cached = _cache.get(digest)
    now = time.monotonic()
    if cached is not None and cached[1] > now:
        return cached[0]
    project = authenticate(state.engine, key)
    if project is None:
        raise Unauthorized("invalid API key")
    if len(_cache) > 10_000:
        _cache.clear()
    _cache[digest] = (project, now + _CACHE_SECONDS)
    return project


CurrentProject = Annotated[Project, Depends(current_project)]
