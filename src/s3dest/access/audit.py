"""The audit log: every change of a project's configuration, with who made it.

The services that change configuration (destinations, manifest, delivery replays, API
keys, webhooks) store the change and `record` its entry inside one
`s3dest.store.engine.atomic` block; the edges only say who is acting (`Actor`). An
entry's `changes` names fields and shows non-secret values; secrets are always `MASK`.

The entry commits with its change or not at all: written in a transaction of its own, a
crash or a failed audit write between the two left a change nobody could trace, or an
entry for a change that was rolled back. A failed audit write now fails the change (a 503
saying nothing was stored, which the client may retry).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from s3dest.store import audit as store
from s3dest.store.audit import AuditRow

MASK = "***"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: ``key:<key id>`` (the REST API), ``dashboard:<key id>``, or ``cli`` (the
    operator on the host), with the prefix of the key when there is one."""

    name: str
    key_prefix: str | None = None

    @classmethod
    def api_key(cls, key_id: str, prefix: str) -> Actor:
        return cls(f"key:{key_id}", prefix)

    @classmethod
    def dashboard(cls, key_id: str, prefix: str) -> Actor:
        return cls(f"dashboard:{key_id}", prefix)


CLI = Actor("cli")


def record(
    engine: Engine,
    actor: Actor,
    *,
    project_id: str,
    action: str,
    target: str,
    changes: Mapping[str, Any] | None = None,
) -> None:
    """Write the entry: inside the change's `atomic` block, in its transaction."""
    store.insert_entry(
        engine,
        project_id=project_id,
        actor=actor.name,
        key_prefix=actor.key_prefix,
        action=action,
        target=target,
        changes=dict(changes or {}),
    )


def diff(
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any],
    *,
    secrets_set: Collection[str] = (),
) -> dict[str, Any]:
    """``{field: {"from": old, "to": new}}`` for every field whose value changed (``"to"``
    only when there was no `before`), and ``{field: {"to": MASK}}`` for each secret that
    was given: its value never appears, only that it was set."""
    out: dict[str, Any] = {}
    for name, value in after.items():
        if before is None:
            if value is not None:
                out[name] = {"to": value}
        elif before.get(name) != value:
            out[name] = {"from": before.get(name), "to": value}
    for name in secrets_set:
        out[name] = {"to": MASK} if before is None else {"from": MASK, "to": MASK}
    return out


def entries(engine: Engine, *, project_id: str, limit: int = 100) -> list[AuditRow]:
    return store.list_entries(engine, project_id, limit)


def public_entry(row: AuditRow) -> dict[str, Any]:
    """An entry as `GET /v1/audit` shows it."""
    return {
        "id": row.id,
        "at": row.at,
        "actor": row.actor,
        "keyPrefix": row.key_prefix,
        "action": row.action,
        "target": row.target,
        "changes": row.changes,
    }
