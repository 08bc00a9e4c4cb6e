"""Dashboard sessions, server-side.

The browser holds a random session id (256 bits); the table holds only its SHA-256, so a
copy of the database signs nobody in. A session is found only through a live key of its
project and before it expires: sign-out deletes the row, revoking the key deletes its rows
(store.projects.revoke_api_key), and both hold in every process and across restarts
because every request reads the row.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import Engine, delete, insert, select

from s3dest.store.engine import transaction
from s3dest.store.tables import api_keys, dashboard_sessions, projects


@dataclass(frozen=True, slots=True)
class SessionRow:
    sid_hash: str
    project_id: str
    project_name: str
    key_id: str
    key_prefix: str
    created_at: float
    expires_at: float


def _hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def create_session(engine: Engine, *, project_id: str, key_id: str, ttl: float) -> str:
    """A new session of that key; returns its id (for the cookie). Expired sessions of every
    project are swept on the way: sign-ins are rare enough to carry that cost."""
    sid = new_session_id()
    now = time.time()
    with transaction(engine) as conn:
        conn.execute(delete(dashboard_sessions).where(dashboard_sessions.c.expires_at < now))
        conn.execute(
            insert(dashboard_sessions).values(
                id_hash=_hash(sid),
                project_id=project_id,
                key_id=key_id,
                created_at=now,
                expires_at=now + ttl,
            )
        )
    return sid


def find_session(engine: Engine, sid: str) -> SessionRow | None:
    """The live session with this id: not signed out, not expired, its key not revoked."""
    query = (
        select(
            dashboard_sessions.c.id_hash,
            dashboard_sessions.c.project_id,
            projects.c.name,
            dashboard_sessions.c.key_id,
            api_keys.c.prefix,
            dashboard_sessions.c.created_at,
            dashboard_sessions.c.expires_at,
        )
        .join(api_keys, api_keys.c.id == dashboard_sessions.c.key_id)
        .join(projects, projects.c.id == dashboard_sessions.c.project_id)
        .where(
            dashboard_sessions.c.id_hash == _hash(sid),
            dashboard_sessions.c.expires_at > time.time(),
            api_keys.c.revoked_at.is_(None),
            api_keys.c.project_id == dashboard_sessions.c.project_id,
        )
    )
    with transaction(engine) as conn:
        row = conn.execute(query).first()
    return None if row is None else SessionRow(*row)


def delete_session(engine: Engine, sid: str) -> None:
    with transaction(engine) as conn:
        conn.execute(delete(dashboard_sessions).where(dashboard_sessions.c.id_hash == _hash(sid)))
