"""Destination operations shared by the REST API, the CLI and the dashboard.

Each takes a parsed body (`DestinationCreate` / `DestinationUpdate`, parsed once at the
edge) keyword-only, checks the complete destination with the rules once, and stores it
through `s3dest.store.destinations`; none opens a database session itself. Results are
`DestinationRow`s, shown through `DestinationPublic.from_row`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from pydantic.alias_generators import to_snake
from sqlalchemy import Engine

from s3dest.access import audit
from s3dest.access.audit import Actor
from s3dest.destinations import key_checks
from s3dest.destinations.rules import ValidatedDestination, validate_destination
from s3dest.destinations.rules.endpoint import EndpointChecker
from s3dest.destinations.runtime import (
    decrypt_secrets,
    s3_destination,
    secret_aad,
    write_settings_changed,
)
from s3dest.destinations.schemas import (
    DESTINATION_FIELDS,
    SECRET_FIELDS,
    DestinationCreate,
    DestinationPublic,
    DestinationUpdate,
    merge_update,
)
from s3dest.destinations.secrets import SecretBox
from s3dest.errors import DeliveryError
from s3dest.keys import KeyTemplate, lint_key_template
from s3dest.manifest.rename import Route, rename_destination
from s3dest.messages import new_stamp, uuid7
from s3dest.s3 import lookups
from s3dest.s3.request import StoredMessage, build_request
from s3dest.s3.writer import ObjectRequest, put_object
from s3dest.store import destinations as store
from s3dest.store import queue
from s3dest.store.destinations import DestinationFields, DestinationRow
from s3dest.store.engine import atomic

TEST_KEY_PREFIX = "s3dest-connection-test/"
#: The connection test's object: s3dest-connection-test/<event-id>.json.
_TEST_KEY = KeyTemplate(f"join('', ['{TEST_KEY_PREFIX}', metadata.\"event-id\", '.json'])")
#: Its message's data: the only field it has, for its metadata, is its objectName.
_TEST_DATA = {"objectName": "s3dest-connection-test"}


def endpoint_check(project_id: str) -> EndpointChecker:
    """The endpoint policy installed now (the operator's allow-list included), a name's
    DNS lookup made on threads of its own within the project's bounds (s3dest.s3.lookups:
    a tenant whose DNS hangs must not hold the threads that serve other tenants)."""
    return lookups.current().checker(project_id)


@dataclass(frozen=True)
class Saved:
    row: DestinationRow
    warnings: list[str]


def new_external_id() -> str:
    """A destination's sts:ExternalId: random, so that no tenant can name another's; not a
    secret (it is shown for the trust policy), and kept for the destination's life."""
    return f"s3dest-{secrets.token_hex(16)}"


def stored_fields(
    checked: ValidatedDestination, box: SecretBox, destination_id: str, external_id: str | None
) -> DestinationFields:
    """The checked destination as the store keeps it: its secrets encrypted, bound to
    the row."""
    values = asdict(checked)
    secret = values.pop("secret_access_key")
    token = values.pop("session_token")
    tags = values.pop("tags")
    del values["warnings"], values["batch"]  # asdict made the settings a dict; stored as JSON
    return DestinationFields(
        **values,
        secret_access_key_enc=(
            box.encrypt(secret, aad=secret_aad(destination_id, "secretAccessKey"))
            if secret is not None
            else None
        ),
        session_token_enc=(
            box.encrypt(token, aad=secret_aad(destination_id, "sessionToken")) if token else None
        ),
        tags=json.dumps(tags, sort_keys=True) if tags else None,
        batch=checked.batch.to_json() if checked.batch is not None else None,
        external_id=external_id,
    )


#: What the audit log shows of a destination: its public fields (the access key ID masked);
#: a secret only as "set" (audit.MASK).
_AUDITED = tuple(name for name in DESTINATION_FIELDS if name not in SECRET_FIELDS)


def _audited(row: DestinationRow) -> dict[str, Any]:
    public = DestinationPublic.from_row(row).model_dump()
    return {name: public[name] for name in _AUDITED if name in public}


def _target(row: DestinationRow) -> str:
    return f"destination:{row.id}"


def create(
    engine: Engine, box: SecretBox, *, project_id: str, body: DestinationCreate, actor: Actor
) -> Saved:
    checked = validate_destination(
        body.to_fields(),
        check_key_template=lint_key_template,
        check_endpoint=endpoint_check(project_id),
    )
    destination_id = uuid7()
    fields = stored_fields(checked, box, destination_id, new_external_id())
    given = [name for name in SECRET_FIELDS if getattr(body, name) is not None]
    with atomic(engine):
        row = store.insert_destination(
            engine, destination_id=destination_id, project_id=project_id, fields=fields
        )
        audit.record(
            engine,
            actor,
            project_id=project_id,
            action="destination.created",
            target=_target(row),
            changes=audit.diff(None, _audited(row), secrets_set=given),
        )
    return Saved(row=row, warnings=checked.warnings)


def current_fields(row: DestinationRow, box: SecretBox) -> dict[str, Any]:
    """The stored destination as camelCase fields (as a create body names them), its
    secrets decrypted: what a PATCH is merged into."""
    fields = {name: getattr(row, column) for name, column in _COLUMNS.items()}
    fields["secretAccessKey"], fields["sessionToken"] = decrypt_secrets(row, box)
    fields["tags"] = row.tags
    batch = row.batch
    fields["batch"] = batch.to_api() if batch is not None else None
    return fields


#: camelCase field -> the row column that holds it as it is (all but the secrets, and the
#: two stored as JSON).
_COLUMNS = {
    name: to_snake(name)
    for name in DESTINATION_FIELDS
    if name not in SECRET_FIELDS and name not in ("tags", "batch")
}


def update(
    engine: Engine,
    box: SecretBox,
    *,
    project_id: str,
    ref: str,
    body: DestinationUpdate,
    actor: Actor,
) -> Saved:
    """PATCH: merge, check the whole result, save; held messages resume at once."""
    row = store.get_destination(engine, project_id, ref)
    merged = merge_update(current_fields(row, box), body)
    checked = validate_destination(
        merged,
        # The samples and the destination's own recent messages.
        check_key_template=key_checks.lint_for(
            engine, project_id=project_id, destination_id=row.id
        ),
        check_endpoint=endpoint_check(project_id),
    )
    renamed: list[Route] = []

    def rename(source: str, old: str, new: str) -> str:
        rewritten, routes = rename_destination(source, old, new)
        renamed.extend(routes)
        return rewritten

    # Kept for the destination's life; rows from before revision 0005 get one now.
    fields = stored_fields(checked, box, row.id, row.external_id or new_external_id())
    # New keys, bucket, region…: past writes prove nothing about the next (README
    # "Status from evidence").
    unverify = bool(write_settings_changed(row, box, checked))
    given = [name for name in SECRET_FIELDS if name in body.model_fields_set]
    with atomic(engine):
        saved = store.update_destination(
            engine,
            project_id=project_id,
            destination_id=row.id,
            fields=fields,
            # amp.yaml follows a rename, in the same transaction (README "Renaming").
            rename_in_manifest=rename,
            unverify=unverify,
        )
        if not saved.enabled:
            queue.hold_pending(engine, saved.id)
        audit.record(
            engine,
            actor,
            project_id=project_id,
            action="destination.updated",
            target=_target(saved),
            changes=audit.diff(_audited(row), _audited(saved), secrets_set=given),
        )
        labels = [route.label for route in renamed]
        if labels:
            audit.record(
                engine,
                actor,
                project_id=project_id,
                action="manifest.applied",
                target="manifest",
                changes={
                    "renamedDestination": {"from": row.name, "to": saved.name},
                    "routes": labels,
                },
            )
    notes = list(checked.warnings)
    if labels:
        notes.append(
            f"amp.yaml now routes {', '.join(labels)} to {saved.name!r} (was {row.name!r}); "
            "update your copy of amp.yaml to match"
        )
    return Saved(row=saved, warnings=notes)


def get(engine: Engine, *, project_id: str, ref: str) -> DestinationRow:
    return store.get_destination(engine, project_id, ref)


def list_(engine: Engine, *, project_id: str) -> list[DestinationRow]:
    return store.list_destinations(engine, project_id)


def labels(engine: Engine, *, project_id: str | None) -> dict[str, tuple[str, str]]:
    """id → (name, project id) of the project's destinations (None: every project's)."""
    return store.destination_labels(engine, project_id)


def delete(engine: Engine, *, project_id: str, ref: str, force: bool, actor: Actor) -> None:
    row = store.get_destination(engine, project_id, ref)
    with atomic(engine):
        store.delete_destination(engine, project_id, row.id, force=force)
        audit.record(
            engine,
            actor,
            project_id=project_id,
            action="destination.deleted",
            target=_target(row),
            changes={"name": row.name, "force": force},
        )


@dataclass(frozen=True)
class TestResult:
    ok: bool
    key: str
    diagnosis: str | None
    etag: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "key": self.key, "diagnosis": self.diagnosis, "etag": self.etag}


def _probe_soon(probes: int) -> float:
    """The first probes of a destination a connection test found failing (the settings'
    backoff is the workers'; a test holds only until the next delivery or test)."""
    return min(30.0 * 2.0 ** max(probes - 1, 0), 600.0)


def connection_test(
    engine: Engine,
    box: SecretBox,
    *,
    project_id: str,
    ref: str,
    actor: Actor,
    timeout_s: float = 15.0,
    probe_delay: Callable[[int], float] = _probe_soon,
) -> TestResult:
    """Write one small, clearly named object with PutObject only; explain any failure.

    The outcome is evidence about the saved destination: a destination error (refused
    credentials, no such bucket…) marks it failing with the diagnosis and holds its
    messages, as a failed delivery would; a success clears a failure, and makes an untested
    destination healthy. A transient error
    (a timeout, a 5xx) says nothing about the configuration and changes nothing."""
    row = store.get_destination(engine, project_id, ref)
    # The write is outside the transaction: it may take `timeout_s`.
    result, error = write_test_object(row, box, timeout_s=timeout_s)
    with atomic(engine):
        if error is not None and error.kind == "destination" and row.enabled:
            queue.hold_destination(
                engine,
                row.id,
                diagnosis=error.diagnosis,
                code=error.s3_code,
                probe_delay=probe_delay,
                version=row.version,
            )
        elif result.ok and row.failing_since is not None:
            # A successful write proves the destination works: resume anything held.
            queue.mark_healthy(engine, row.id)
        elif result.ok and row.verified_at is None:
            # The first evidence that it works: untested becomes healthy.
            queue.mark_verified(engine, row.id, version=row.version)
        _tested(engine, actor, row, ok=result.ok)
    return result


def write_test_object(
    row: DestinationRow, box: SecretBox, *, timeout_s: float = 15.0
) -> tuple[TestResult, DeliveryError | None]:
    """The connection test's write, for a saved destination or a form's draft of one.

    Its key and metadata are built as every message's are (`build_request`), for a
    message of this destination stamped now."""
    dest = s3_destination(row, box, request_timeout_s=timeout_s)
    stamp = new_stamp()
    request = build_request(
        StoredMessage(
            event_id=stamp.event_id,
            project_id=row.project_id,
            destination_id=row.id,
            event_time_ns=stamp.event_time_ns,
            connection_id="",
            topic="",
            body=None,
            envelope=None,
        ),
        _TEST_KEY,
        data=_TEST_DATA,
    )
    body = (
        b'{"s3dest":"connection test","destination":"'
        + row.name.encode()
        + b'","note":"safe to delete"}'
    )
    try:
        outcome = put_object(
            dest,
            ObjectRequest(
                key=request.key, body=body, metadata=request.metadata, event_id=stamp.event_id
            ),
        )
    except DeliveryError as exc:
        return TestResult(ok=False, key=request.key, diagnosis=_as_tested(exc)), exc
    return TestResult(ok=True, key=request.key, diagnosis=None, etag=outcome.etag), None


def _as_tested(error: DeliveryError) -> str:
    """A delivery's words for a failure, as a connection test says them: it made one
    attempt and retries nothing."""
    if error.kind != "transient":
        return error.diagnosis
    return error.diagnosis.removesuffix("; retrying") + " (one attempt: run the test again)"


def _tested(engine: Engine, actor: Actor, row: DestinationRow, *, ok: bool) -> None:
    # The outcome only: the endpoint's reply text stays out of the audit log.
    audit.record(
        engine,
        actor,
        project_id=row.project_id,
        action="destination.tested",
        target=_target(row),
        changes={"ok": ok},
    )


def rotate_secrets(engine: Engine, box: SecretBox) -> int:
    """Re-encrypt every stored secret under the newest key; returns rows changed."""
    changed = 0
    for row in store.all_destinations(engine):
        secret = token = None
        if row.secret_access_key_enc and box.needs_rotation(row.secret_access_key_enc):
            secret = box.reencrypt(
                row.secret_access_key_enc, aad=secret_aad(row.id, "secretAccessKey")
            )
        if row.session_token_enc and box.needs_rotation(row.session_token_enc):
            token = box.reencrypt(row.session_token_enc, aad=secret_aad(row.id, "sessionToken"))
        if secret is not None or token is not None:
            store.update_secrets(
                engine, row.id, secret_access_key_enc=secret, session_token_enc=token
            )
            changed += 1
    return changed
