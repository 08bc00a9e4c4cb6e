"""Destination operations shared by the REST API, the CLI and the dashboard."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, update

from s3dest.destinations.masking import mask_access_key_id
from s3dest.destinations.runtime import s3_destination, secret_aad
from s3dest.destinations.secrets import SecretBox
from s3dest.destinations.validation import (
    ValidatedDestination,
    merge_update,
    parse_create,
    parse_update,
    validate_destination,
)
from s3dest.errors import DeliveryError
from s3dest.keys import lint_key_template
from s3dest.messages import EventMetadata, new_stamp
from s3dest.s3.metadata import object_metadata
from s3dest.s3.writer import ObjectRequest, put_object
from s3dest.store import destinations as store
from s3dest.store import queue
from s3dest.store.destinations import DestinationRow
from s3dest.store.engine import transaction
from s3dest.store.tables import destinations as destinations_table

TEST_KEY_PREFIX = "s3dest-connection-test/"


def public(row: DestinationRow, warnings: list[str] | None = None) -> dict[str, Any]:
    """The API's view of a destination: never the secret or the session token."""
    return {
        "id": row.id,
        "name": row.name,
        "bucket": row.bucket,
        "region": row.region,
        "accessKeyId": mask_access_key_id(row.access_key_id),
        "hasSessionToken": row.session_token_enc is not None,
        "keyTemplate": row.key_template,
        "storageClass": row.storage_class,
        "endpointUrl": row.endpoint_url,
        "writeMode": row.write_mode,
        "enabled": row.enabled,
        "status": row.status,
        "diagnosis": row.diagnosis,
        "failingSince": row.failing_since,
        "warnings": list(warnings or []),
        "createdAt": row.created_at,
        "updatedAt": row.updated_at,
    }


def _columns(v: ValidatedDestination) -> dict[str, Any]:
    return {
        "name": v.name,
        "bucket": v.bucket,
        "region": v.region,
        "access_key_id": v.access_key_id,
        "key_template": v.key_template,
        "storage_class": v.storage_class,
        "endpoint_url": v.endpoint_url,
        "write_mode": v.write_mode,
        "enabled": v.enabled,
    }


@dataclass(frozen=True)
class Saved:
    row: DestinationRow
    warnings: list[str]


def create(engine: Engine, box: SecretBox, project_id: str, body: Any) -> Saved:
    from s3dest.messages import uuid7

    parsed = parse_create(body)
    validated = validate_destination(parsed.to_fields(), check_key_template=lint_key_template)
    destination_id = uuid7()
    values = _columns(validated)
    values.update(
        id=destination_id,
        project_id=project_id,
        secret_access_key_enc=box.encrypt(
            validated.secret_access_key, aad=secret_aad(destination_id, "secretAccessKey")
        ),
        session_token_enc=(
            box.encrypt(validated.session_token, aad=secret_aad(destination_id, "sessionToken"))
            if validated.session_token
            else None
        ),
    )
    row = store.insert_destination(engine, values)
    return Saved(row=row, warnings=validated.warnings)


def _current_fields(row: DestinationRow, box: SecretBox) -> dict[str, Any]:
    s3 = s3_destination(row, box)
    return {
        "name": row.name,
        "bucket": row.bucket,
        "region": row.region,
        "accessKeyId": row.access_key_id,
        "secretAccessKey": s3.secret_access_key,
        "sessionToken": s3.session_token,
        "keyTemplate": row.key_template,
        "storageClass": row.storage_class,
        "endpointUrl": row.endpoint_url,
        "writeMode": row.write_mode,
        "enabled": row.enabled,
    }


def update_(engine: Engine, box: SecretBox, project_id: str, ref: str, body: Any) -> Saved:
    """PATCH: merge, re-validate the whole result, save; held messages resume at once."""
    patch = parse_update(body)
    row = store.get_destination(engine, project_id, ref)
    merged = merge_update(_current_fields(row, box), patch)
    validated = validate_destination(merged, check_key_template=lint_key_template)
    values = _columns(validated)
    values["secret_access_key_enc"] = box.encrypt(
        validated.secret_access_key, aad=secret_aad(row.id, "secretAccessKey")
    )
    values["session_token_enc"] = (
        box.encrypt(validated.session_token, aad=secret_aad(row.id, "sessionToken"))
        if validated.session_token
        else None
    )
    saved = store.update_destination(engine, project_id, row.id, values)
    if not saved.enabled:
        queue.hold_pending(engine, saved.id)
    return Saved(row=saved, warnings=validated.warnings)


def get(engine: Engine, project_id: str, ref: str) -> DestinationRow:
    return store.get_destination(engine, project_id, ref)


def list_(engine: Engine, project_id: str) -> list[DestinationRow]:
    return store.list_destinations(engine, project_id)


def delete(engine: Engine, project_id: str, ref: str, *, force: bool) -> None:
    store.delete_destination(engine, project_id, ref, force=force)


@dataclass(frozen=True)
class TestResult:
    ok: bool
    key: str
    diagnosis: str | None
    etag: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "key": self.key, "diagnosis": self.diagnosis, "etag": self.etag}


def connection_test(
    engine: Engine, box: SecretBox, project_id: str, ref: str, *, timeout_s: float = 15.0
) -> TestResult:
    """Write one small, clearly named object with PutObject only; explain any failure."""
    row = store.get_destination(engine, project_id, ref)
    dest = s3_destination(row, box, request_timeout_s=timeout_s)
    stamp = new_stamp()
    key = f"{TEST_KEY_PREFIX}{stamp.event_id}.json"
    body = (
        b'{"s3dest":"connection test","destination":"'
        + row.name.encode()
        + b'","note":"safe to delete"}'
    )
    meta = EventMetadata.of(
        {"objectName": "s3dest-connection-test"},
        project_id=project_id,
        destination_id=row.id,
        event_id=stamp.event_id,
        event_time_ns=stamp.event_time_ns,
        connection_id="",
        topic="",
    )
    try:
        outcome = put_object(
            dest,
            ObjectRequest(
                key=key, body=body, metadata=object_metadata(meta), event_id=stamp.event_id
            ),
        )
    except DeliveryError as exc:
        return TestResult(ok=False, key=key, diagnosis=exc.diagnosis)
    # A successful write proves the destination works: resume anything held.
    if row.failing_since is not None:
        queue.mark_healthy(engine, row.id)
    return TestResult(ok=True, key=key, diagnosis=None, etag=outcome.etag)


def rotate_secrets(engine: Engine, box: SecretBox) -> int:
    """Re-encrypt every stored secret under the newest key; returns rows changed."""
    changed = 0
    for row in store.all_destinations(engine):
        values: dict[str, Any] = {}
        if box.needs_rotation(row.secret_access_key_enc):
            values["secret_access_key_enc"] = box.reencrypt(
                row.secret_access_key_enc, aad=secret_aad(row.id, "secretAccessKey")
            )
        if row.session_token_enc and box.needs_rotation(row.session_token_enc):
            values["session_token_enc"] = box.reencrypt(
                row.session_token_enc, aad=secret_aad(row.id, "sessionToken")
            )
        if values:
            with transaction(engine) as conn:
                conn.execute(
                    update(destinations_table)
                    .where(destinations_table.c.id == row.id)
                    .values(**values, updated_at=time.time())
                )
            changed += 1
    return changed
