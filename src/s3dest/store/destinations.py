"""Destination rows. Secrets arrive here already encrypted; this module never sees them.

`DestinationFields` is what a user sets on a destination (as checked by the rules, its
secrets encrypted); `DestinationRow` is the whole stored row.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from s3dest.batching import BatchSettings
from s3dest.errors import Conflict, NotFound
from s3dest.store.engine import reading, transaction
from s3dest.store.queue.batches import unbatch_waiting
from s3dest.store.queue.health import resume_held
from s3dest.store.queue.states import WAITING
from s3dest.store.tables import destinations, manifests, messages


@dataclass(frozen=True, slots=True)
class DestinationFields:
    """The columns a create or an update sets, secrets already encrypted."""

    name: str
    bucket: str
    region: str
    access_key_id: str | None
    secret_access_key_enc: str | None
    session_token_enc: str | None
    key_template: str | None
    storage_class: str
    endpoint_url: str | None
    write_mode: str
    enabled: bool
    role_arn: str | None = None
    external_id: str | None = None
    server_side_encryption: str | None = None
    kms_key_id: str | None = None
    bucket_key_enabled: bool | None = None
    acl: str | None = None
    tags: str | None = None  # a JSON object
    batch: str | None = None  # JSON of s3dest.batching.BatchSettings; None: no batching


@dataclass(frozen=True, slots=True)
class DestinationRow:
    id: str
    project_id: str
    name: str
    bucket: str
    region: str
    access_key_id: str | None
    secret_access_key_enc: str | None
    session_token_enc: str | None
    key_template: str | None
    storage_class: str
    endpoint_url: str | None
    write_mode: str
    enabled: bool
    role_arn: str | None
    external_id: str | None
    server_side_encryption: str | None
    kms_key_id: str | None
    bucket_key_enabled: bool | None
    acl: str | None
    tags_json: str | None
    failing_since: float | None
    diagnosis: str | None
    last_error_code: str | None
    probe_attempts: int
    next_probe_at: float | None
    verified_at: float | None
    version: int
    created_at: float
    updated_at: float
    batch_json: str | None = None

    @property
    def batch(self) -> BatchSettings | None:
        """SPEC §9's settings, or None: one object per message."""
        return BatchSettings.from_json(self.batch_json)

    @property
    def tags(self) -> dict[str, str] | None:
        if not self.tags_json:
            return None
        parsed: dict[str, str] = json.loads(self.tags_json)
        return parsed

    @property
    def has_session_token(self) -> bool:
        return self.session_token_enc is not None

    @property
    def status(self) -> str:
        if not self.enabled:
            return "disabled"
        if self.failing_since is not None:
            return "failing"
        # Healthy only on evidence: a passing connection test or a delivery.
        return "healthy" if self.verified_at is not None else "untested"


def _row(r: Any) -> DestinationRow:
    return DestinationRow(
        **{name: getattr(r, _COLUMN.get(name, name)) for name in DestinationRow.__slots__}
    )


#: Row attribute -> its column, where the two differ.
_COLUMN = {"tags_json": "tags", "batch_json": "batch"}


def _by_ref(project_id: str, ref: str) -> Any:
    return (
        select(destinations)
        .where(destinations.c.project_id == project_id)
        .where(or_(destinations.c.id == ref, destinations.c.name == ref))
        .order_by((destinations.c.id == ref).desc())
        .limit(1)
    )


def insert_destination(
    engine: Engine, *, destination_id: str, project_id: str, fields: DestinationFields
) -> DestinationRow:
    now = time.time()
    row = {
        "id": destination_id,
        "project_id": project_id,
        "created_at": now,
        "updated_at": now,
        "version": 1,
        "probe_attempts": 0,
        **asdict(fields),
    }
    try:
        with transaction(engine) as conn:
            conn.execute(insert(destinations).values(**row))
            return _row(
                conn.execute(select(destinations).where(destinations.c.id == row["id"])).one()
            )
    except IntegrityError:
        raise Conflict(
            f"a destination named {fields.name!r} already exists in this project; "
            "choose another name or update the existing one"
        ) from None


def get_destination(engine: Engine, project_id: str, ref: str) -> DestinationRow:
    with reading(engine) as conn:
        return _get(conn, project_id, ref)


def _get(conn: Connection, project_id: str, ref: str) -> DestinationRow:
    found = conn.execute(_by_ref(project_id, ref)).first()
    if found is None:
        raise NotFound(f"no destination {ref!r} in this project")
    return _row(found)


def get_destination_by_id(engine: Engine, destination_id: str) -> DestinationRow | None:
    with reading(engine) as conn:
        found = conn.execute(
            select(destinations).where(destinations.c.id == destination_id)
        ).first()
    return _row(found) if found is not None else None


def list_destinations(engine: Engine, project_id: str) -> list[DestinationRow]:
    with reading(engine) as conn:
        rows = conn.execute(
            select(destinations)
            .where(destinations.c.project_id == project_id)
            .order_by(destinations.c.name)
        )
        return [_row(r) for r in rows]


def destination_names(engine: Engine, project_id: str) -> dict[str, str]:
    """name → id, for manifest validation and routing."""
    with reading(engine) as conn:
        rows = conn.execute(
            select(destinations.c.name, destinations.c.id).where(
                destinations.c.project_id == project_id
            )
        )
        return {r.name: r.id for r in rows}


def destination_labels(engine: Engine, project_id: str | None) -> dict[str, tuple[str, str]]:
    """id → (name, project id) of the project's destinations (None: of every project), for
    the labels of /metrics."""
    query = select(destinations.c.id, destinations.c.name, destinations.c.project_id)
    if project_id is not None:
        query = query.where(destinations.c.project_id == project_id)
    with reading(engine) as conn:
        return {r.id: (r.name, r.project_id) for r in conn.execute(query)}


def update_destination(
    engine: Engine,
    *,
    project_id: str,
    destination_id: str,
    fields: DestinationFields,
    rename_in_manifest: Callable[[str, str, str], str] | None = None,
    unverify: bool = False,
) -> DestinationRow:
    """Apply an update; the destination is no longer failing and held messages resume.
    With `unverify` (what a write depends on changed) it is untested again, its
    `verified_at` cleared until a write succeeds with the new settings.

    A rename with `rename_in_manifest` (source, old name, new name → source) rewrites the
    project's amp.yaml in the same transaction, so that no message routed to the
    destination is ever refused for naming a destination that no longer exists."""
    now = time.time()
    try:
        with transaction(engine) as conn:
            current = _get(conn, project_id, destination_id)
            if rename_in_manifest is not None and current.name != fields.name:
                _rename_in_manifest(conn, project_id, current.name, fields.name, rename_in_manifest)
            conn.execute(
                update(destinations)
                .where(destinations.c.id == current.id)
                .values(
                    **asdict(fields),
                    updated_at=now,
                    version=destinations.c.version + 1,
                    failing_since=None,
                    diagnosis=None,
                    last_error_code=None,
                    probe_attempts=0,
                    next_probe_at=None,
                    **({"verified_at": None} if unverify else {}),
                )
            )
            # Resume at once: held messages become due now.
            resume_held(conn, current.id, now)
            if fields.batch is None:
                # Batching turned off: what waited for a batch is delivered one by one.
                # (Sealed batches stay batches: their membership is fixed.)
                unbatch_waiting(conn, current.id, now)
            return _get(conn, project_id, current.id)
    except IntegrityError:
        raise Conflict(
            f"a destination named {fields.name!r} already exists in this project"
        ) from None


def _rename_in_manifest(
    conn: Connection,
    project_id: str,
    old: str,
    new: str,
    rename: Callable[[str, str, str], str],
) -> None:
    query = select(manifests.c.source).where(manifests.c.project_id == project_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()  # a concurrent upload waits for the rename
    source = conn.execute(query).scalar_one_or_none()
    if source is None:
        return
    rewritten = rename(str(source), old, new)
    if rewritten != source:
        conn.execute(
            update(manifests)
            .where(manifests.c.project_id == project_id)
            .values(source=rewritten, updated_at=time.time())
        )


def pending_count(conn: Connection, destination_id: str) -> int:
    return int(
        conn.execute(
            select(func.count())
            .select_from(messages)
            .where(messages.c.destination_id == destination_id)
            .where(messages.c.state.in_(WAITING))
        ).scalar_one()
    )


def delete_destination(engine: Engine, project_id: str, ref: str, *, force: bool) -> None:
    with transaction(engine) as conn:
        current = _get(conn, project_id, ref)
        pending = pending_count(conn, current.id)
        if pending and not force:
            raise Conflict(
                f"destination {current.name!r} still has {pending} message(s) waiting to be "
                "delivered; wait for them, or delete with force to discard them "
                "(?force=true in the API, --force in the CLI)"
            )
        conn.execute(
            delete(messages).where(
                messages.c.destination_id == current.id, messages.c.state.in_(WAITING)
            )
        )
        conn.execute(delete(destinations).where(destinations.c.id == current.id))


def all_destinations(engine: Engine) -> list[DestinationRow]:
    with transaction(engine) as conn:
        return [_row(r) for r in conn.execute(select(destinations))]


def update_secrets(
    engine: Engine,
    destination_id: str,
    *,
    secret_access_key_enc: str | None = None,
    session_token_enc: str | None = None,
) -> None:
    """Replace stored ciphertexts (re-encrypted under a newer key); None keeps one."""
    values = {
        name: value
        for name, value in (
            ("secret_access_key_enc", secret_access_key_enc),
            ("session_token_enc", session_token_enc),
        )
        if value is not None
    }
    if not values:
        return
    with transaction(engine) as conn:
        conn.execute(
            update(destinations)
            .where(destinations.c.id == destination_id)
            .values(**values, updated_at=time.time())
        )
