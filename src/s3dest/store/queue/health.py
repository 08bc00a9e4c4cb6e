"""Destination health: hold a failing destination's messages, probe it, resume it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, select, update

from s3dest.store import outbox
from s3dest.store.engine import transaction
from s3dest.store.queue.states import CLAIMABLE, MessageState
from s3dest.store.tables import destinations, messages

# What a destination's failure leaves behind, cleared when it is healthy again.
_NOT_FAILING: dict[str, Any] = {
    "failing_since": None,
    "diagnosis": None,
    "last_error_code": None,
    "probe_attempts": 0,
    "next_probe_at": None,
}
_HEALTHY = (
    update(destinations)
    .where(
        destinations.c.id == bindparam("h_id"),
        destinations.c.failing_since.is_not(None),
        destinations.c.version == bindparam("h_version"),
    )
    .values(**_NOT_FAILING)
)
# The first successful write makes an untested destination healthy (one indexed update
# that matches nothing once it is verified): only with the settings it was written with, so
# that a write in flight during an update does not vouch for the new keys.
_VERIFIED = (
    update(destinations)
    .where(
        destinations.c.id == bindparam("v_id"),
        destinations.c.verified_at.is_(None),
        destinations.c.version == bindparam("v_version"),
    )
    .values(verified_at=bindparam("v_at"))
)
_VERIFIED_ANY = (
    update(destinations)
    .where(destinations.c.id == bindparam("v_id"), destinations.c.verified_at.is_(None))
    .values(verified_at=bindparam("v_at"))
)


def hold_destination(
    engine: Engine,
    destination_id: str,
    *,
    diagnosis: str,
    code: str | None,
    probe_delay: Callable[[int], float],
    version: int,
) -> None:
    """Mark a destination failing and hold its pending messages until it is fixed.

    `version` is the configuration that failed: if the destination was updated since,
    the failure is stale and the messages it held are released instead.
    """
    now = time.time()
    with transaction(engine) as conn:
        row = conn.execute(
            select(
                destinations.c.failing_since,
                destinations.c.probe_attempts,
                destinations.c.version,
            ).where(destinations.c.id == destination_id)
        ).first()
        if row is None:
            return
        if row.version != version:
            resume_held(conn, destination_id, now)
            return
        attempts_so_far = (row.probe_attempts or 0) + 1
        conn.execute(
            update(destinations)
            .where(destinations.c.id == destination_id)
            .values(
                failing_since=row.failing_since or now,
                diagnosis=diagnosis,
                last_error_code=code,
                probe_attempts=attempts_so_far,
                next_probe_at=now + probe_delay(attempts_so_far),
            )
        )
        _hold_claimable(conn, destination_id, now)
        # destination.failing, once per outage (a no-op while it is announced already).
        outbox.destination_failing(conn, destination_id, diagnosis=diagnosis, code=code, now=now)


def hold_pending(engine: Engine, destination_id: str) -> None:
    """A disabled destination keeps its messages held until it is enabled again."""
    now = time.time()
    with transaction(engine) as conn:
        _hold_claimable(conn, destination_id, now)


def mark_healthy(engine: Engine, destination_id: str) -> None:
    """A write succeeded: clear the failure and let every held message go."""
    with transaction(engine) as conn:
        healthy(conn, destination_id, time.time())


def mark_verified(engine: Engine, destination_id: str, *, version: int) -> None:
    """A connection test of `version` passed on a destination that is not failing: it is
    no longer untested (its messages, held or not, are left as they are)."""
    with transaction(engine) as conn:
        verified(conn, destination_id, time.time(), version=version)


def verified(
    conn: Connection, destination_id: str, now: float, *, version: int | None = None
) -> None:
    """Record the destination's first successful write (with `version`: made with that
    version's settings), if it had none."""
    if version is None:
        conn.execute(_VERIFIED_ANY, {"v_id": destination_id, "v_at": now})
    else:
        conn.execute(_VERIFIED, {"v_id": destination_id, "v_at": now, "v_version": version})


def healthy(
    conn: Connection, destination_id: str, now: float, *, version: int | None = None
) -> None:
    """Clear a destination's failure; with `version`, only if it is still that version.

    Cheap when the destination is not failing (one indexed update that matches nothing),
    so every successful flush of deliveries can call it: a success on a failing
    destination (a probe, or one written by another node) resumes it at once.
    """
    if version is not None:
        cleared = conn.execute(_HEALTHY, {"h_id": destination_id, "h_version": version}).rowcount
    else:
        cleared = conn.execute(
            update(destinations)
            .where(destinations.c.id == destination_id, destinations.c.failing_since.is_not(None))
            .values(**_NOT_FAILING)
        ).rowcount
    verified(conn, destination_id, now, version=version)
    if cleared or version is None:
        resume_held(conn, destination_id, now)
    # A write succeeded: destination.recovered if its outage was announced (whatever the
    # version: an update cleared failing_since above, but only a write proves it works).
    outbox.destination_wrote(conn, destination_id, now)


def release_probes(engine: Engine) -> int:
    """For each failing destination whose probe is due, release one held message to try."""
    now = time.time()
    released = 0
    with transaction(engine) as conn:
        due = conn.execute(
            select(destinations.c.id).where(
                destinations.c.failing_since.is_not(None),
                destinations.c.next_probe_at <= now,
                destinations.c.enabled.is_(True),
            )
        ).all()
        for (destination_id,) in due:
            oldest = conn.execute(
                select(messages.c.event_id)
                .where(
                    messages.c.destination_id == destination_id,
                    messages.c.state == MessageState.HELD,
                )
                .order_by(messages.c.accepted_at)
                .limit(1)
            ).first()
            if oldest is None:
                continue  # nothing held yet: look again on the next round
            conn.execute(
                update(destinations)
                .where(destinations.c.id == destination_id)
                # The probe's own outcome sets the next probe time (hold) or clears it.
                .values(next_probe_at=now + 3600)
            )
            conn.execute(
                update(messages)
                .where(messages.c.event_id == oldest.event_id)
                .values(state=MessageState.QUEUED, next_attempt_at=now, updated_at=now)
            )
            released += 1
    return released


def _hold_claimable(conn: Connection, destination_id: str, now: float) -> None:
    conn.execute(
        update(messages)
        .where(messages.c.destination_id == destination_id, messages.c.state.in_(CLAIMABLE))
        .values(state=MessageState.HELD, updated_at=now)
    )


def resume_held(conn: Connection, destination_id: str, now: float) -> None:
    """Held messages become due now."""
    conn.execute(
        update(messages)
        .where(messages.c.destination_id == destination_id, messages.c.state == MessageState.HELD)
        .values(state=MessageState.QUEUED, next_attempt_at=now, updated_at=now)
    )
