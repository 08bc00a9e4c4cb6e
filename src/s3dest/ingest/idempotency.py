"""Idempotent ingest: ``Idempotency-Key`` on ``POST /v1/messages``.

A request that carries the header is stored once per project and key within the
retention window (`S3DEST_RETAIN_DELIVERED`, as long as delivered records are kept): a
repeat with the same body gets the first request's 202 again — the same event ids, no
second message, no second object — and a repeat with another body is refused (422),
since it is a client's mistake to reuse a key for new messages. While the first request
is still being stored a repeat gets 409 (retry it). A request that was refused or failed
stored nothing, and its key is free again.

The answer is saved in the transaction that stores the messages, so a server killed at
any moment leaves the messages with their answer, or neither: a claim without an answer
stored nothing. A repeat is told 409 while such a claim is younger than ten minutes (its
request may still be running); after that the claim is taken over and the repeat stores
the messages, once.

The key is the request's, not a message's: it covers "the same file sent twice", the case
a retry after a timeout makes, without a lookup per message on the hot path.
"""

from __future__ import annotations

import hashlib
import time
from typing import IO

from sqlalchemy import Engine

from s3dest.errors import Conflict, InvalidInput
from s3dest.store import idempotency as store

HEADER = "Idempotency-Key"
MAX_KEY = 255
# A claim without an answer this old belonged to a process that died while storing.
ABANDONED_SECONDS = 600.0


def parse_key(value: str) -> str:
    """The header's key: 1-255 visible ASCII characters (422 naming the header)."""
    if not 1 <= len(value) <= MAX_KEY or not all("!" <= ch <= "~" for ch in value):
        raise InvalidInput(
            f"the {HEADER} header is not a usable key",
            {HEADER: f"must be 1 to {MAX_KEY} visible ASCII characters, e.g. a UUID"},
        )
    return value


def digest(body: bytes | IO[bytes]) -> str:
    """SHA-256 of the request body (a spooled one is read through, then rewound)."""
    if isinstance(body, bytes):
        return hashlib.sha256(body).hexdigest()
    body.seek(0)
    h = hashlib.sha256()
    while piece := body.read(1024 * 1024):
        h.update(piece)
    body.seek(0)
    return h.hexdigest()


def begin(
    engine: Engine, *, project_id: str, key: str, body_sha256: str, window: float
) -> bytes | store.KeyClaim:
    """Claim the key for this request (go ahead and store it with this claim), or the
    202's body of the first request with that key and body."""
    now = time.time()
    got = store.claim(
        engine,
        project_id,
        key,
        body_sha256,
        now=now,
        window=window,
        abandon_after=ABANDONED_SECONDS,
    )
    if got.first:
        return store.KeyClaim(project_id, key, got.created_at)
    if got.request_sha256 != body_sha256:
        raise InvalidInput(
            f"this {HEADER} was used for a request with a different body",
            {
                HEADER: "already used within the idempotency window for other messages; "
                "send new messages with a new key (the same key only repeats the same body)"
            },
        )
    if got.response is None:
        raise Conflict(
            f"a request with this {HEADER} is still being stored; send it again in a moment "
            "to get its answer"
        )
    return got.response


def release(engine: Engine, claim: store.KeyClaim) -> None:
    store.release(engine, claim)
