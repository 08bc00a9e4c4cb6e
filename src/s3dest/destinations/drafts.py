"""Test before saving: the connection test on a form's values, nothing stored.

A draft is checked with the same rules as a save (`validate_destination`) and written to
exactly as a saved destination would be: it becomes a transient `DestinationRow` (its
secrets encrypted for that row only) and goes through `service.write_test_object`. Editing,
a blank secret means "the saved one", as the form says; a new destination has no
external id yet, so a role is tested once saved (its trust policy names that id).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from sqlalchemy import Engine

from s3dest.access import audit
from s3dest.access.audit import Actor
from s3dest.destinations import service
from s3dest.destinations.rules import validate_destination
from s3dest.destinations.schemas import DestinationCreate, DestinationUpdate, merge_update
from s3dest.destinations.secrets import SecretBox
from s3dest.keys import lint_key_template
from s3dest.messages import uuid7
from s3dest.store import destinations as store
from s3dest.store.destinations import DestinationRow

#: Stored field -> the row attribute that holds it, where they differ (the JSON columns).
_ROW_NAMES = {"tags": "tags_json", "batch": "batch_json"}


def draft_row(
    engine: Engine,
    box: SecretBox,
    *,
    project_id: str,
    body: DestinationCreate | DestinationUpdate,
    ref: str | None,
) -> DestinationRow:
    """The destination the form describes, as a row that is never stored. Raises
    `InvalidInput` (per field) as saving it would."""
    if ref is not None:
        saved = store.get_destination(engine, project_id, ref)
        if not isinstance(body, DestinationUpdate):
            raise TypeError("an edit is a DestinationUpdate")
        fields = merge_update(service.current_fields(saved, box), body)
        destination_id, external_id, version = saved.id, saved.external_id, saved.version
    else:
        if not isinstance(body, DestinationCreate):
            raise TypeError("a new destination is a DestinationCreate")
        fields = body.to_fields()
        destination_id, external_id, version = uuid7(), None, 0
    checked = validate_destination(
        fields,
        check_key_template=lint_key_template,
        check_endpoint=service.endpoint_check(project_id),
    )
    stored = service.stored_fields(checked, box, destination_id, external_id)
    now = time.time()
    return DestinationRow(
        id=destination_id,
        project_id=project_id,
        **{_ROW_NAMES.get(name, name): value for name, value in asdict(stored).items()},
        failing_since=None,
        diagnosis=None,
        last_error_code=None,
        probe_attempts=0,
        next_probe_at=None,
        verified_at=None,
        version=version,
        created_at=now,
        updated_at=now,
    )


def test_draft(
    engine: Engine,
    box: SecretBox,
    *,
    project_id: str,
    body: DestinationCreate | DestinationUpdate,
    ref: str | None,
    actor: Actor,
    timeout_s: float = 15.0,
) -> tuple[DestinationRow, service.TestResult]:
    """Write the test object with the form's values. The saved destination's status is
    not changed: these values are not its configuration (yet)."""
    row = draft_row(engine, box, project_id=project_id, body=body, ref=ref)
    if ref is None and row.role_arn:
        return row, service.TestResult(
            ok=False,
            key="",
            diagnosis=(
                "A role is tested once the destination is saved: its trust policy must name "
                "the external id s3dest generates on save. Save, paste the trust policy "
                "shown, then Test connection."
            ),
        )
    result, _ = service.write_test_object(row, box, timeout_s=timeout_s)
    changes: dict[str, Any] = {"ok": result.ok, "unsaved": True}
    audit.record(
        engine,
        actor,
        project_id=project_id,
        action="destination.tested",
        target=f"destination:{row.id}" if ref is not None else f"destination:new:{row.name}",
        changes=changes,
    )
    return row, result
