"""A project's API keys: create, list, revoke (REST, CLI and dashboard), each change audited."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from s3dest.access.audit import Actor, record
from s3dest.store import projects as store
from s3dest.store.engine import atomic
from s3dest.store.projects import ApiKeyInfo, NewApiKey


def create(engine: Engine, *, project_id: str, name: str, actor: Actor) -> NewApiKey:
    with atomic(engine):
        created = store.create_api_key(engine, project_id, name)
        record(
            engine,
            actor,
            project_id=project_id,
            action="apiKey.created",
            target=f"apiKey:{created.info.id}",
            changes={"name": created.info.name, "prefix": created.info.prefix},
        )
    return created


def list_(engine: Engine, *, project_id: str) -> list[ApiKeyInfo]:
    return store.list_api_keys(engine, project_id)


def revoke(engine: Engine, *, project_id: str, key_id: str, actor: Actor) -> ApiKeyInfo:
    """Revoke a key (NotFound; Conflict for the last one). Every process stops accepting it
    within a second: s3dest.api.deps keeps authenticated keys for at most half a second."""
    with atomic(engine):
        info = store.revoke_api_key(engine, project_id, key_id)
        record(
            engine,
            actor,
            project_id=project_id,
            action="apiKey.revoked",
            target=f"apiKey:{info.id}",
            changes={"name": info.name, "prefix": info.prefix},
        )
    return info


def public_key(info: ApiKeyInfo) -> dict[str, Any]:
    """A key as `GET /v1/api-keys` lists it: never the key or its hash."""
    return {
        "id": info.id,
        "name": info.name,
        "prefix": info.prefix,
        "createdAt": info.created_at,
        "lastUsedAt": info.last_used_at,
    }
