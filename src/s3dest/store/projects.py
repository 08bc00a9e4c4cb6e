"""Projects (tenants) and their API keys. Keys are stored as SHA-256 hashes only."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import Engine, insert, select

from s3dest.errors import NotFound
from s3dest.messages import uuid7
from s3dest.store.engine import transaction
from s3dest.store.tables import api_keys, projects

KEY_PREFIX = "s3d_"


@dataclass(frozen=True, slots=True)
class Project:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class NewProject:
    project: Project
    api_key: str  # shown once; only its hash is stored


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def create_project(engine: Engine, name: str) -> NewProject:
    now = time.time()
    project = Project(id=uuid7(), name=name)
    key = new_api_key()
    with transaction(engine) as conn:
        conn.execute(insert(projects).values(id=project.id, name=name, created_at=now))
        conn.execute(
            insert(api_keys).values(
                id=uuid7(),
                project_id=project.id,
                key_hash=hash_key(key),
                prefix=key[:8],
                created_at=now,
            )
        )
    return NewProject(project=project, api_key=key)


def add_api_key(engine: Engine, project_id: str) -> str:
    key = new_api_key()
    with transaction(engine) as conn:
        found = conn.execute(select(projects.c.id).where(projects.c.id == project_id)).first()
        if found is None:
            raise NotFound(f"no project {project_id}")
        conn.execute(
            insert(api_keys).values(
                id=uuid7(),
                project_id=project_id,
                key_hash=hash_key(key),
                prefix=key[:8],
                created_at=time.time(),
            )
        )
    return key


def list_projects(engine: Engine) -> list[Project]:
    with transaction(engine) as conn:
        rows = conn.execute(select(projects.c.id, projects.c.name).order_by(projects.c.id))
        return [Project(id=r.id, name=r.name) for r in rows]


def _live_key(engine: Engine, digest: str, project_id: str | None = None) -> Project | None:
    """The project of the live (not revoked) API key with this hash (and project), or None.
    The hash comparison is constant-time."""
    query = (
        select(api_keys.c.key_hash, projects.c.id, projects.c.name)
        .join(projects, projects.c.id == api_keys.c.project_id)
        .where(api_keys.c.key_hash == digest, api_keys.c.revoked_at.is_(None))
    )
    if project_id is not None:
        query = query.where(api_keys.c.project_id == project_id)
    with transaction(engine) as conn:
        row = conn.execute(query).first()
    if row is None or not hmac.compare_digest(row.key_hash, digest):
        return None
    return Project(id=row.id, name=row.name)


def authenticate(engine: Engine, api_key: str) -> Project | None:
    """The project an API key belongs to, or None."""
    return _live_key(engine, hash_key(api_key))


def authenticate_hash(engine: Engine, key_hash: str, *, project_id: str) -> Project | None:
    """The project when `key_hash` is the hash of a live API key of that project, else None
    (a dashboard session, which keeps only the hash, re-checks it on every request)."""
    return _live_key(engine, key_hash, project_id)
