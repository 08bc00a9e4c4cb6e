"""A destination's `batch` setting (SPEC §9) over REST, as a user drives it: a real
`s3dest serve`, real HTTP, on SQLite and on PostgreSQL.

Create and update take `batch` (every key optional, unknown keys refused), `null` turns it
off, a PATCH without it keeps it, and the public destination shows it; a wrong value is a
422 naming `batch.<key>` with the range and the fix. Changing it keeps the evidence that the
destination works (`verifiedAt`) but is an update like any other (a new version, audited).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from tests.support.builders import destination_fields, example_destination_fields
from tests.support.moto_server import S3Server
from tests.support.s3dest_server import S3destEnv, S3destProcess, serve

from s3dest.batching import BatchSettings
from s3dest.runtime import open_engine
from s3dest.settings import Settings
from s3dest.store.destinations import get_destination
from s3dest.store.projects import create_project

DEFAULTS = BatchSettings().to_api()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def module_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[S3destProcess, Engine]]:
    """`s3dest serve` for this module on one backend, and an engine on its database."""
    url = None if request.param == "sqlite" else request.getfixturevalue("pg_module_database_url")
    tmp: Path = tmp_path_factory.mktemp(f"batch-{request.param}")
    env = S3destEnv(data_dir=tmp / "data", database_url=url, extra={"S3DEST_SECRET_KEY": ""})
    process = serve(env, tmp)
    engine = open_engine(Settings(data_dir=env.data_dir, database_url=url), migrate=False)
    try:
        yield process, engine
    finally:
        process.kill()
        engine.dispose()


@pytest.fixture
def project(module_server: tuple[S3destProcess, Engine]) -> Iterator[tuple[httpx.Client, str]]:
    """An HTTP client with the API key of a fresh project, and the project's id."""
    process, engine = module_server
    created = create_project(engine, f"batch-{uuid.uuid4().hex[:8]}")
    with httpx.Client(
        base_url=process.url, headers={"Authorization": f"Bearer {created.api_key}"}, timeout=60
    ) as client:
        yield client, created.project.id


def _stored(engine: Engine, project_id: str, ref: str) -> tuple[str | None, int]:
    """The destination's stored batch column and its version, read from the database."""
    row = get_destination(engine, project_id, ref)
    return row.batch_json, row.version


def _ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def test_batch_round_trip_create_get_patch_null(
    project: tuple[httpx.Client, str], module_server: tuple[S3destProcess, Engine]
) -> None:
    api, project_id = project
    engine = module_server[1]

    plain = _ok(api.post("/v1/destinations", json=example_destination_fields("plain")), 201)
    assert plain["batch"] is None  # opt-in: no batch given, one object per message
    assert _stored(engine, project_id, plain["id"])[0] is None

    created = _ok(
        api.post(
            "/v1/destinations",
            json=example_destination_fields(
                "batched", batch={"maxMessages": 50, "compression": "zstd"}
            ),
        ),
        201,
    )
    ref = f"/v1/destinations/{created['id']}"
    want = {**DEFAULTS, "maxMessages": 50, "compression": "zstd"}
    assert created["batch"] == want  # the keys left out shown with their defaults
    assert _ok(api.get(ref))["batch"] == want
    assert _ok(api.get("/v1/destinations/batched"))["batch"] == want  # by name too
    listed = {d["name"]: d["batch"] for d in _ok(api.get("/v1/destinations"))["destinations"]}
    assert listed == {"batched": want, "plain": None}
    # What the worker reads: exactly BatchSettings(...).to_json().
    stored, version = _stored(engine, project_id, created["id"])
    assert stored == BatchSettings(max_messages=50, compression="zstd").to_json()
    assert version == 1

    # A PATCH changes the keys it gives and keeps the others.
    patched = _ok(api.patch(ref, json={"batch": {"maxSeconds": 2.5, "maxBytes": 4096}}))
    want = {**want, "maxSeconds": 2.5, "maxBytes": 4096}
    assert patched["batch"] == want
    both = BatchSettings(max_messages=50, max_bytes=4096, max_seconds=2.5, compression="zstd")
    assert _stored(engine, project_id, created["id"]) == (both.to_json(), 2)
    # A null key goes back to its default.
    patched = _ok(api.patch(ref, json={"batch": {"compression": None}}))
    want = {**want, "compression": "gzip"}
    assert patched["batch"] == want
    assert _stored(engine, project_id, created["id"])[1] == 3

    # A PATCH without batch leaves it as it is.
    renamed = _ok(api.patch(ref, json={"name": "batched2", "storageClass": "STANDARD_IA"}))
    assert renamed["batch"] == want
    assert _ok(api.get(ref))["batch"] == want
    assert _stored(engine, project_id, created["id"])[1] == 4

    # null: batching off.
    off = _ok(api.patch(ref, json={"batch": None}))
    assert off["batch"] is None
    assert _ok(api.get(ref))["batch"] is None
    assert _stored(engine, project_id, created["id"]) == (None, 5)

    # {} on a destination that does not batch: on, with every default.
    on = _ok(api.patch(f"/v1/destinations/{plain['id']}", json={"batch": {}}))
    assert on["batch"] == DEFAULTS
    assert _stored(engine, project_id, plain["id"]) == (BatchSettings().to_json(), 2)


def test_changing_batch_keeps_verified_at(
    project: tuple[httpx.Client, str], s3_server: S3Server, bucket: str
) -> None:
    """Batching is not a write setting: the same PutObject, bucket and keys. A change of a
    write setting (the storage class) does reset it, so the check below can fail."""
    api, _ = project
    created = _ok(api.post("/v1/destinations", json=destination_fields(s3_server, bucket)), 201)
    ref = f"/v1/destinations/{created['id']}"
    assert _ok(api.post(f"{ref}/test"))["ok"] is True
    verified = _ok(api.get(ref))
    assert verified["status"] == "healthy" and verified["verifiedAt"] is not None

    for change in ({"maxMessages": 10}, {"compression": "none", "maxSeconds": 1}, None):
        patched = _ok(api.patch(ref, json={"batch": change}))
        assert patched["verifiedAt"] == verified["verifiedAt"], change
        assert patched["status"] == "healthy", change
        assert patched["updatedAt"] >= verified["updatedAt"]

    unverified = _ok(api.patch(ref, json={"storageClass": "STANDARD_IA"}))
    assert unverified["verifiedAt"] is None and unverified["status"] == "untested"


def _assert_422(response: httpx.Response, field: str, *hints: str) -> None:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input", error
    assert list(error["fields"]) == [field], error  # that field, and no other
    message = error["fields"][field]
    assert error["message"] == f"invalid destination: {message}"
    for hint in hints:
        assert hint in message, message


#: (batch, the field named, what its message must say).
INVALID: list[tuple[Any, str, tuple[str, ...]]] = [
    ({"maxMessages": 0}, "batch.maxMessages", ("from 1 to 10,000", "0 is outside", "leave")),
    ({"maxMessages": 10_001}, "batch.maxMessages", ("from 1 to 10,000", "10,001 is outside")),
    ({"maxMessages": 2.5}, "batch.maxMessages", ("whole number", "from 1 to 10,000")),
    ({"maxMessages": "100"}, "batch.maxMessages", ("whole number",)),
    ({"maxMessages": True}, "batch.maxMessages", ("whole number",)),
    ({"maxBytes": 1023}, "batch.maxBytes", ("1,024 (1 KiB)", "67,108,864 (64 MiB)", "1,023")),
    ({"maxBytes": 64 * 1024 * 1024 + 1}, "batch.maxBytes", ("67,108,865 is outside",)),
    ({"maxSeconds": 0.05}, "batch.maxSeconds", ("from 0.1 to 3,600", "0.05 is outside")),
    ({"maxSeconds": 3601}, "batch.maxSeconds", ("from 0.1 to 3,600", "3,601 is outside")),
    ({"maxSeconds": "soon"}, "batch.maxSeconds", ("not a number",)),
    ({"format": "csv"}, "batch.format", ("'jsonl'",)),
    ({"compression": "lz4"}, "batch.compression", ("'gzip', 'zstd' or 'none'",)),
    ({"compression": "GZIP"}, "batch.compression", ("'gzip', 'zstd' or 'none'",)),
    ({"maxMessage": 10}, "batch.maxMessage", ("not a batch setting", "maxMessages")),
    (100, "batch", ("must be an object", "null")),
    ([{"maxMessages": 1}], "batch", ("must be an object",)),
]


@pytest.mark.parametrize(
    ("batch", "field", "hints"), INVALID, ids=[str(case[0]) for case in INVALID]
)
def test_invalid_batch_is_422_naming_the_field(
    project: tuple[httpx.Client, str], batch: Any, field: str, hints: tuple[str, ...]
) -> None:
    api, _ = project
    response = api.post("/v1/destinations", json=example_destination_fields("d", batch=batch))
    _assert_422(response, field, *hints)
    assert _ok(api.get("/v1/destinations"))["destinations"] == []  # nothing was created

    created = _ok(
        api.post(
            "/v1/destinations", json=example_destination_fields("d", batch={"maxMessages": 7})
        ),
        201,
    )
    ref = f"/v1/destinations/{created['id']}"
    _assert_422(api.patch(ref, json={"batch": batch}), field, *hints)
    assert _ok(api.get(ref))["batch"] == created["batch"]  # unchanged


def test_every_wrong_batch_key_is_named_at_once(project: tuple[httpx.Client, str]) -> None:
    api, _ = project
    response = api.post(
        "/v1/destinations",
        json=example_destination_fields(
            "d", region="nowhere", batch={"maxMessages": 0, "maxSeconds": 0}
        ),
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    # In the destination's field order: region before batch.
    assert list(error["fields"]) == ["region", "batch.maxMessages", "batch.maxSeconds"]
    assert "3 fields need fixing" in error["message"]


def test_batch_changes_are_audited(project: tuple[httpx.Client, str]) -> None:
    api, _ = project
    created = _ok(api.post("/v1/destinations", json=example_destination_fields("d", batch={})), 201)
    ref = f"/v1/destinations/{created['id']}"
    _ok(api.patch(ref, json={"batch": {"maxMessages": 20}}))
    _ok(api.patch(ref, json={"enabled": False}))  # batch unchanged: not in its diff
    _ok(api.patch(ref, json={"batch": None}))

    entries = list(reversed(_ok(api.get("/v1/audit"))["entries"]))
    changes = [e["changes"] for e in entries if e["target"] == f"destination:{created['id']}"]
    assert [e["action"] for e in entries] == ["destination.created"] + ["destination.updated"] * 3
    assert changes[0]["batch"] == {"to": DEFAULTS}
    twenty = {**DEFAULTS, "maxMessages": 20}
    assert changes[1] == {"batch": {"from": DEFAULTS, "to": twenty}}
    assert "batch" not in changes[2] and changes[2]["enabled"] == {"from": True, "to": False}
    assert changes[3] == {"batch": {"from": twenty, "to": None}}
