"""Idempotency keys of ingest requests: one row per (project, key) within the window.

A request with a key first *claims* it (a row without a response, in its own
transaction: the primary key lets one of two concurrent requests win); once its
messages are stored the row gets the 202's body (`complete`), or it is removed when
nothing was stored (`release`), so that a retry may go ahead.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from s3dest.errors import StorageUnavailable
from s3dest.store.engine import transaction
from s3dest.store.tables import idempotency_keys

# Expired keys are removed a few at a time by the claims that pass, never in one
# statement that would hold the write lock for long.
_PRUNE_BATCH = 100


@dataclass(frozen=True, slots=True)
class Claimed:
    """A claim's answer: `first` is True when this request holds the key; otherwise the
    earlier request's body digest, its response (None while it is still being stored)
    and when it was claimed."""

    first: bool
    request_sha256: str = ""
    response: bytes | None = None
    created_at: float = 0.0


def claim(
    engine: Engine,
    project_id: str,
    key: str,
    digest: str,
    *,
    now: float,
    window: float,
    abandon_after: float,
) -> Claimed:
    """Claim `key` for a request whose body has SHA-256 `digest`, or say who holds it.

    A key older than `window` is forgotten; a claim without a response older than
    `abandon_after` belonged to a process that died before it answered, and is taken over
    (its request may or may not have been stored: at-least-once, as a retry always is)."""
    t = idempotency_keys
    for _ in range(3):
        with transaction(engine) as conn:
            expired = conn.execute(
                select(t.c.project_id, t.c.key)
                .where(t.c.created_at < now - window)
                .limit(_PRUNE_BATCH)
            ).all()
            if expired:
                conn.execute(
                    delete(t).where(t.c.project_id == bindparam("p"), t.c.key == bindparam("k")),
                    [{"p": p, "k": k} for p, k in expired],
                )
            row = conn.execute(
                select(t.c.request_sha256, t.c.response, t.c.created_at).where(
                    t.c.project_id == project_id, t.c.key == key
                )
            ).first()
            if row is not None and row.response is None and row.created_at < now - abandon_after:
                conn.execute(delete(t).where(t.c.project_id == project_id, t.c.key == key))
                row = None
            if row is not None:
                return Claimed(
                    first=False,
                    request_sha256=row.request_sha256,
                    response=bytes(row.response) if row.response is not None else None,
                    created_at=row.created_at,
                )
        try:
            with transaction(engine) as conn:
                conn.execute(
                    insert(t).values(
                        project_id=project_id, key=key, request_sha256=digest, created_at=now
                    )
                )
            return Claimed(first=True)
        except IntegrityError:
            continue  # another request claimed it between the two: read what it holds
    raise StorageUnavailable("the idempotency key is being claimed and released; send again")


def complete(engine: Engine, project_id: str, key: str, response: bytes) -> None:
    t = idempotency_keys
    with transaction(engine) as conn:
        conn.execute(
            update(t).where(t.c.project_id == project_id, t.c.key == key).values(response=response)
        )


def release(engine: Engine, project_id: str, key: str) -> None:
    """Forget a claim whose request stored nothing (refused, or failed)."""
    t = idempotency_keys
    with transaction(engine) as conn:
        conn.execute(
            delete(t).where(t.c.project_id == project_id, t.c.key == key, t.c.response.is_(None))
        )
