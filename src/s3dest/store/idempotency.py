"""Idempotency keys of ingest requests: one row per (project, key) within the window.

A request with a key first *claims* it (a row without a response, in its own
transaction: the primary key lets one of two concurrent requests win). The 202's body is
saved into the row by `save_answer`, in the transaction that stores the messages
(`s3dest.store.ingest`): a claim has an answer exactly when its messages are stored, so a
process that dies at any moment leaves either both or neither. A claim whose request stored
nothing is removed (`release`), so that a retry may go ahead; one left by a dead process is
taken over later (`claim`), which is safe, since such a claim never stored anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Engine, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from s3dest.errors import Conflict, StorageUnavailable
from s3dest.store.engine import transaction
from s3dest.store.tables import idempotency_keys

# Expired keys are removed a few at a time by the claims that pass, never in one
# statement that would hold the write lock for long.
_PRUNE_BATCH = 100


@dataclass(frozen=True, slots=True)
class KeyClaim:
    """A key this request holds: its row is the one claimed at `claimed_at` (a claim taken
    over by another request has another time)."""

    project_id: str
    key: str
    claimed_at: float


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
    (its request stored nothing: the answer and the messages commit together)."""
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
                taken = conn.execute(
                    delete(t).where(
                        t.c.project_id == project_id,
                        t.c.key == key,
                        # Not if its request has just stored its messages and answer.
                        t.c.response.is_(None),
                        t.c.created_at == row.created_at,
                    )
                ).rowcount
                if not taken:
                    continue  # answered meanwhile: read the answer
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
            return Claimed(first=True, request_sha256=digest, created_at=now)
        except IntegrityError:
            continue  # another request claimed it between the two: read what it holds
    raise StorageUnavailable("the idempotency key is being claimed and released; send again")


def save_answer(conn: Connection, claim: KeyClaim, response: bytes) -> None:
    """Keep the 202's body for the key, in the caller's transaction (the one that stores
    the messages). Raises `Conflict`, which rolls that transaction back, when the claim is
    no longer this request's: it was taken over as abandoned (a request that took longer
    than `abandon_after`), and the request that holds it now stores these messages."""
    t = idempotency_keys
    saved = conn.execute(
        update(t)
        .where(
            t.c.project_id == claim.project_id,
            t.c.key == claim.key,
            t.c.created_at == claim.claimed_at,
            t.c.response.is_(None),
        )
        .values(response=response)
    ).rowcount
    if saved != 1:
        raise Conflict(
            "another request with this Idempotency-Key is storing these messages (this one "
            "took too long and its key was taken over); nothing was stored by this one"
        )


def release(engine: Engine, claim: KeyClaim) -> None:
    """Forget a claim whose request stored nothing (refused, or failed); not one that has
    an answer (its messages are stored), nor another request's."""
    t = idempotency_keys
    with transaction(engine) as conn:
        conn.execute(
            delete(t).where(
                t.c.project_id == claim.project_id,
                t.c.key == claim.key,
                t.c.created_at == claim.claimed_at,
                t.c.response.is_(None),
            )
        )
