"""Destinations over REST, as a user drives them: a real `s3dest serve`, real HTTP.

Every test runs on SQLite and on PostgreSQL. One server per backend serves the whole
module (starting one costs seconds); each test gets a fresh project, which isolates it.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from tests.support.builders import EXAMPLE_SECRET as AWS_SECRET
from tests.support.builders import destination_fields, example_destination_fields
from tests.support.moto_server import Credentials, S3Server
from tests.support.s3dest_server import S3destEnv, S3destProcess, serve
from tests.support.samples import DESTINATION, PAGE_AMP_YAML

from s3dest.runtime import open_engine
from s3dest.settings import Settings
from s3dest.store.projects import create_project

# The product page's example templates (and None: the default key).
PAGE_TEMPLATES: list[str | None] = [
    None,
    "join('/', [metadata.objectName, metadata.operationId])",
    "join('/', [metadata.objectName, time.date, metadata.\"event-id\"])",
    "join('', [time.rfc3339_nano, '_', metadata.\"event-id\", '.json'])",
    "join('/', [data.installationId, metadata.operationId])",
]

PUBLIC_FIELDS = {
    "id",
    "name",
    "bucket",
    "region",
    "accessKeyId",
    "keyTemplate",
    "storageClass",
    "endpointUrl",
    "writeMode",
    "enabled",
    "status",
    "warnings",
    "createdAt",
    "updatedAt",
    "batch",
}
MASKED = re.compile(r"^(AKIA|ASIA)…[A-Z0-9]{4}$")

# A plausible AWS key pair for destinations that are never written to.


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def module_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[S3destProcess, Engine]]:
    """`s3dest serve` for this module on one backend, and an engine on its database."""
    url = None if request.param == "sqlite" else request.getfixturevalue("pg_module_database_url")
    tmp: Path = tmp_path_factory.mktemp(f"destinations-{request.param}")
    env = S3destEnv(data_dir=tmp / "data", database_url=url, extra={"S3DEST_SECRET_KEY": ""})
    process = serve(env, tmp)
    engine = open_engine(Settings(data_dir=env.data_dir, database_url=url), migrate=False)
    try:
        yield process, engine
    finally:
        process.kill()
        engine.dispose()


@pytest.fixture
def api(module_server: tuple[S3destProcess, Engine]) -> Iterator[httpx.Client]:
    """An HTTP client with the API key of a fresh project."""
    process, engine = module_server
    # A fresh name per test: project names are unique on a server (issue 15 item 8).
    api_key = create_project(engine, f"test-{uuid.uuid4().hex[:8]}").api_key
    with httpx.Client(
        base_url=process.url, headers={"Authorization": f"Bearer {api_key}"}, timeout=60
    ) as client:
        yield client


@pytest.fixture
def creds(s3_server: S3Server, bucket: str) -> Credentials:
    return s3_server.putonly_user(bucket)


def moto_body(
    s3_server: S3Server, bucket: str, creds: Credentials, **fields: Any
) -> dict[str, Any]:
    fields.setdefault("name", DESTINATION)
    return destination_fields(s3_server, bucket, creds=creds, **fields)


def aws_body(**fields: Any) -> dict[str, Any]:
    """A destination on AWS itself (no endpointUrl): strict AWS rules apply."""
    fields.setdefault("name", "awsDestination")
    return example_destination_fields(**fields)


def assert_public(body: dict[str, Any], *secrets: str) -> None:
    assert set(body) >= PUBLIC_FIELDS, PUBLIC_FIELDS - set(body)
    assert "secretAccessKey" not in body
    assert "sessionToken" not in body
    assert MASKED.match(body["accessKeyId"]), body["accessKeyId"]
    text = repr(body)
    for secret in secrets:
        assert secret not in text


def assert_field_error(response: httpx.Response, field: str, *hints: str) -> str:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"].startswith("invalid_"), error
    assert field in error["fields"], error
    message: str = error["fields"][field]
    for hint in hints:
        assert hint.lower() in message.lower(), message
    return message


def names(api: httpx.Client) -> list[str]:
    response = api.get("/v1/destinations")
    assert response.status_code == 200, response.text
    return [d["name"] for d in response.json()["destinations"]]


# --------------------------------------------------------------------------- create


def test_create_with_each_page_template(
    api: httpx.Client, s3_server: S3Server, bucket: str, creds: Credentials
) -> None:
    for index, template in enumerate(PAGE_TEMPLATES):
        fields: dict[str, Any] = {"name": f"dest-{index}"}
        if template is not None:
            fields["keyTemplate"] = template
        before = time.time()
        response = api.post("/v1/destinations", json=moto_body(s3_server, bucket, creds, **fields))
        assert response.status_code == 201, response.text
        body = response.json()
        assert_public(body, creds.secret_access_key)
        assert body["name"] == f"dest-{index}"
        assert body["bucket"] == bucket
        assert body["region"] == s3_server.region
        assert body["accessKeyId"] == (f"{creds.access_key_id[:4]}…{creds.access_key_id[-4:]}")
        assert body["keyTemplate"] == template
        assert body["storageClass"] == "STANDARD"
        assert body["endpointUrl"] == s3_server.endpoint
        assert body["writeMode"] == "overwrite"
        assert body["enabled"] is True
        assert body["status"] == "untested"  # nothing has written to it yet (issue 15)
        assert body["verifiedAt"] is None
        assert isinstance(body["warnings"], list)
        assert all(isinstance(w, str) and w for w in body["warnings"])
        assert before - 5 <= body["createdAt"] == body["updatedAt"] <= time.time() + 5
        assert isinstance(body["id"], str) and body["id"]

    assert names(api) == [f"dest-{i}" for i in range(len(PAGE_TEMPLATES))]
    # A template without event-id or operationId gets a warning, not an error.
    response = api.post(
        "/v1/destinations",
        json=moto_body(
            s3_server, bucket, creds, name="collides", keyTemplate="join('/', [time.date])"
        ),
    )
    assert response.status_code == 201, response.text
    assert any("event-id" in w for w in response.json()["warnings"])


def test_create_with_every_field(api: httpx.Client) -> None:
    token = "FwoGZXIvYXdzEXAMPLEsessionTOKEN0123456789abcdefghij"
    response = api.post(
        "/v1/destinations",
        json=aws_body(
            accessKeyId="ASIAIOSFODNN7EXAMPLE",
            sessionToken=token,
            keyTemplate="join('/', [metadata.objectName, metadata.\"event-id\"])",
            storageClass="glacier_ir",
            writeMode="create-only",
            enabled=False,
        ),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert_public(body, AWS_SECRET, token)
    assert body["accessKeyId"] == "ASIA…MPLE"
    assert body["storageClass"] == "GLACIER_IR"
    assert body["writeMode"] == "create-only"
    assert body["enabled"] is False
    assert body["status"] == "disabled"
    assert body["endpointUrl"] is None


def test_invalid_fields_are_422_naming_the_field_and_the_fix(api: httpx.Client) -> None:
    cases: list[tuple[dict[str, Any], str, tuple[str, ...]]] = [
        (aws_body(keyTemplate="join('/', [metadata.objectName"), "keyTemplate", ("jmespath",)),
        (
            aws_body(keyTemplate="metadata.nosuchfield"),
            "keyTemplate",
            (),
        ),
        (aws_body(storageClass="FROZEN"), "storageClass", ("use one of", "STANDARD_IA")),
        (aws_body(bucket="My_Bucket"), "bucket", ("lower-case",)),
        (aws_body(bucket="s3://my-bucket/path"), "bucket", ("'my-bucket'",)),
        (aws_body(secretAccessKey=""), "secretAccessKey", ("required",)),
        (
            {k: v for k, v in aws_body().items() if k != "secretAccessKey"},
            "secretAccessKey",
            ("required", "secret access key"),
        ),
        (aws_body(region="us-west-2a"), "region", ("'us-west-2'",)),
        (aws_body(region="Oregon"), "region", ("us-west-2",)),
        (aws_body(accessKeyId="short"), "accessKeyId", ("AKIA",)),
        (aws_body(name="has space"), "name", ("letters, digits",)),
        (aws_body(endpointUrl="ftp://example.com"), "endpointUrl", ("http://",)),
        (aws_body(writeMode="append"), "writeMode", ("create-only",)),
        (aws_body(color="blue"), "color", ("not a field",)),
    ]
    for body, field, hints in cases:
        response = api.post("/v1/destinations", json=body)
        message = assert_field_error(response, field, *hints)
        assert len(message) > 20, message  # a sentence, not a code
        assert AWS_SECRET not in response.text
    # Several problems at once: every field is named.
    response = api.post(
        "/v1/destinations", json=aws_body(bucket="B", storageClass="x", region="nowhere")
    )
    assert response.status_code == 422
    assert {"bucket", "storageClass", "region"} <= set(response.json()["error"]["fields"])
    # A body that is not an object at all.
    response = api.post("/v1/destinations", json=["not", "an", "object"])
    assert response.status_code == 422
    assert response.json()["error"]["fields"]
    assert names(api) == []


def test_duplicate_name_is_409(api: httpx.Client) -> None:
    assert api.post("/v1/destinations", json=aws_body()).status_code == 201
    response = api.post("/v1/destinations", json=aws_body(bucket="another-bucket"))
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "conflict"
    assert "awsDestination" in error["message"]
    # Renaming another destination onto the name clashes too.
    other = api.post("/v1/destinations", json=aws_body(name="other")).json()
    response = api.patch(f"/v1/destinations/{other['id']}", json={"name": "awsDestination"})
    assert response.status_code == 409, response.text
    assert names(api) == ["awsDestination", "other"]


def test_storage_class_is_stored_canonical(api: httpx.Client) -> None:
    created = api.post("/v1/destinations", json=aws_body(storageClass="standard_ia")).json()
    assert created["storageClass"] == "STANDARD_IA"
    assert api.get(f"/v1/destinations/{created['id']}").json()["storageClass"] == "STANDARD_IA"
    patched = api.patch(f"/v1/destinations/{created['id']}", json={"storageClass": "Deep-Archive"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["storageClass"] == "DEEP_ARCHIVE"
    # null resets it to the default.
    patched = api.patch(f"/v1/destinations/{created['id']}", json={"storageClass": None})
    assert patched.json()["storageClass"] == "STANDARD"


# --------------------------------------------------------------------------- read


def test_get_by_id_and_by_name_and_list(api: httpx.Client) -> None:
    first = api.post("/v1/destinations", json=aws_body(name="zeta")).json()
    second = api.post("/v1/destinations", json=aws_body(name="alpha")).json()
    for ref in (first["id"], "zeta"):
        response = api.get(f"/v1/destinations/{ref}")
        assert response.status_code == 200, response.text
        assert response.json() == {**first, "warnings": []}
        assert_public(response.json(), AWS_SECRET)
    listed = api.get("/v1/destinations").json()["destinations"]
    assert [d["id"] for d in listed] == [second["id"], first["id"]]  # by name
    for item in listed:
        assert_public(item, AWS_SECRET)

    response = api.get("/v1/destinations/nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


# --------------------------------------------------------------------------- update


def test_patch_secret_alone_rotates_it(
    api: httpx.Client, s3_server: S3Server, bucket: str, creds: Credentials
) -> None:
    wrong = "x" * 40
    created = api.post(
        "/v1/destinations",
        json=moto_body(s3_server, bucket, creds, secretAccessKey=wrong, storageClass="ONEZONE_IA"),
    ).json()
    failed = api.post(f"/v1/destinations/{created['id']}/test").json()
    assert failed["ok"] is False

    response = api.patch(
        f"/v1/destinations/{created['id']}", json={"secretAccessKey": creds.secret_access_key}
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert_public(patched, creds.secret_access_key, wrong)
    unchanged = {"id", "name", "bucket", "region", "accessKeyId", "keyTemplate", "storageClass"}
    assert {k: patched[k] for k in unchanged} == {k: created[k] for k in unchanged}
    assert patched["updatedAt"] >= created["updatedAt"]
    # The new secret is the one in use.
    result = api.post(f"/v1/destinations/{created['id']}/test").json()
    assert result["ok"] is True, result


def test_patch_revalidates_the_merged_destination(api: httpx.Client) -> None:
    created = api.post("/v1/destinations", json=aws_body()).json()
    ref = f"/v1/destinations/{created['id']}"

    assert_field_error(api.patch(ref, json={"region": "nowhere"}), "region", "us-west-2")
    assert_field_error(api.patch(ref, json={"keyTemplate": "join("}), "keyTemplate")
    assert_field_error(api.patch(ref, json={"secretAccessKey": "short"}), "secretAccessKey")
    assert_field_error(api.patch(ref, json={"name": None}), "name", "cannot be null")
    # The merged result is checked as a whole: this storage class does not fit the bucket.
    assert_field_error(api.patch(ref, json={"storageClass": "EXPRESS_ONEZONE"}), "bucket")
    # A temporary key needs a session token, which the stored destination does not have.
    assert_field_error(api.patch(ref, json={"accessKeyId": "ASIAIOSFODNN7EXAMPLE"}), "sessionToken")
    # Nothing changed.
    assert api.get(ref).json() == {**created, "warnings": []}

    # A valid change of one field keeps the others.
    response = api.patch(ref, json={"region": "EU-CENTRAL-1", "enabled": False})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["region"] == "eu-central-1"
    assert body["enabled"] is False
    assert body["status"] == "disabled"
    assert body["bucket"] == created["bucket"]
    # By name, too; and clearing an optional field with null.
    response = api.patch(
        "/v1/destinations/awsDestination", json={"keyTemplate": "join('/', [time.date])"}
    )
    assert response.status_code == 200
    assert response.json()["warnings"]
    response = api.patch("/v1/destinations/awsDestination", json={"keyTemplate": None})
    assert response.json()["keyTemplate"] is None
    assert api.patch("/v1/destinations/nope", json={"enabled": True}).status_code == 404


# --------------------------------------------------------------------------- delete


def test_delete_then_404(api: httpx.Client) -> None:
    created = api.post("/v1/destinations", json=aws_body()).json()
    response = api.delete(f"/v1/destinations/{created['id']}")
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert api.get(f"/v1/destinations/{created['id']}").status_code == 404
    assert api.delete(f"/v1/destinations/{created['id']}").status_code == 404
    assert names(api) == []
    # The name is free again.
    assert api.post("/v1/destinations", json=aws_body()).status_code == 201
    assert api.delete("/v1/destinations/awsDestination").status_code == 204


def _message(destination: str) -> dict[str, Any]:
    return {
        "destination": destination,
        "action": "read",
        "provider": "hubspot",
        "objectName": "contacts",
        "installationId": "inst-1",
        "operationId": "op-1",
        "result": [{"fields": {"id": "1"}}],
    }


def test_delete_is_refused_while_messages_are_queued(
    api: httpx.Client, s3_server: S3Server, bucket: str, creds: Credentials
) -> None:
    created = api.post(
        "/v1/destinations", json=moto_body(s3_server, bucket, creds, enabled=False)
    ).json()
    sent = api.post("/v1/messages", json=_message(created["name"]))
    assert sent.status_code == 202, sent.text
    event_id = sent.json()["accepted"][0]["eventId"]
    assert api.get(f"/v1/messages/{event_id}").json()["state"] == "held"

    response = api.delete(f"/v1/destinations/{created['id']}")
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "conflict"
    assert "force=true" in error["message"]
    assert api.get(f"/v1/destinations/{created['id']}").status_code == 200

    response = api.delete(f"/v1/destinations/{created['id']}", params={"force": "true"})
    assert response.status_code == 204, response.text
    assert api.get(f"/v1/destinations/{created['id']}").status_code == 404
    assert api.get(f"/v1/messages/{event_id}").status_code == 404


# --------------------------------------------------------------------------- key preview


def test_key_template_preview(api: httpx.Client) -> None:
    template = "join('/', [metadata.objectName, metadata.operationId])"
    # Against the page's sample read message.
    response = api.post("/v1/key-templates/preview", json={"keyTemplate": template})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["key"] == "contacts/0199e0a8-149d-7ee9-9f50-0514403517f9"
    assert isinstance(body["warnings"], list)

    # Against a given message (with or without the {"data": ...} envelope).
    message = {
        "action": "read",
        "provider": "salesforce",
        "installationId": "inst-42",
        "objectName": "account",
        "operationId": "op-7",
        "operationTime": "2025-10-14T02:58:59.323405308Z",
        "result": [{"fields": {"id": "1"}}],
    }
    for given in (message, {"data": message}):
        response = api.post(
            "/v1/key-templates/preview", json={"keyTemplate": template, "message": given}
        )
        assert response.status_code == 200, response.text
        assert response.json()["key"] == "account/op-7"

    response = api.post(
        "/v1/key-templates/preview",
        json={
            "keyTemplate": "join('/', [data.installationId, time.date, 'x.json'])",
            "message": message,
        },
    )
    assert response.json()["key"] == "inst-42/2025-10-14/x.json"
    assert any("event-id" in w for w in response.json()["warnings"])

    # No template: the default key of the page.
    response = api.post("/v1/key-templates/preview", json={})
    assert response.status_code == 200
    assert response.json()["key"] == (
        "2025-10-14T02:58:59.323405308Z_0199e0a8-149d-7ee9-9f50-0514403517f9.json"
    )
    assert response.json()["warnings"] == []

    # A broken template is a 422 naming keyTemplate.
    response = api.post("/v1/key-templates/preview", json={"keyTemplate": "join('/', ["})
    assert_field_error(response, "keyTemplate")


# --------------------------------------------------------------------------- custom fields

REGION_TEMPLATE = "join('/', [data.result[0].fields.custom_region, metadata.\"event-id\"])"


def _with_region(region: str) -> dict[str, Any]:
    return {
        "action": "read",
        "provider": "hubspot",
        "objectName": "contacts",
        "installationId": "inst-1",
        "result": [{"fields": {"id": "438", "custom_region": region}}],
    }


def test_a_custom_field_template_is_saved_with_a_warning_and_previewed_on_real_messages(
    api: httpx.Client, s3_server: S3Server, bucket: str, creds: Credentials
) -> None:
    """Issue 15 item 1: a template reading a customer's own field was refused (422, "does
    not render for a sample read message"); real messages were never consulted."""
    # Disabled: its messages wait, bodies stored, to be previewed against.
    response = api.post(
        "/v1/destinations",
        json=moto_body(s3_server, bucket, creds, keyTemplate=REGION_TEMPLATE, enabled=False),
    )
    assert response.status_code == 201, response.text
    (warning,) = [w for w in response.json()["warnings"] if "custom_region" in w]
    assert "data.result[0].fields.custom_region || 'unknown'" in warning

    sent = api.post(
        "/v1/messages", json={"destination": DESTINATION, **_with_region("emea")}
    ).json()["accepted"][0]
    response = api.post(
        "/v1/key-templates/preview",
        json={"keyTemplate": REGION_TEMPLATE, "destination": DESTINATION},
    )
    assert response.status_code == 200, response.text
    preview = response.json()
    assert preview["sampleKeys"]["read"].startswith("{custom_region}/")
    assert preview["recentKeys"] == [
        {"eventId": sent["eventId"], "key": f"emea/{sent['eventId']}", "error": None}
    ]

    # A template the real message cannot satisfy: saved, with the evidence.
    other = REGION_TEMPLATE.replace("custom_region", "custom_tier")
    response = api.patch(f"/v1/destinations/{DESTINATION}", json={"keyTemplate": other})
    assert response.status_code == 200, response.text
    assert any(
        "fails for 1 of the 1 most recent real messages" in w and sent["eventId"] in w
        for w in response.json()["warnings"]
    ), response.json()["warnings"]
    # A structural problem is still refused.
    response = api.patch(f"/v1/destinations/{DESTINATION}", json={"keyTemplate": "data.result"})
    assert_field_error(response, "keyTemplate", "a list")


# --------------------------------------------------------------------------- rename


def test_renaming_a_routed_destination_rewrites_amp_yaml_in_the_same_change(
    api: httpx.Client, s3_server: S3Server, bucket: str, creds: Credentials
) -> None:
    """Issue 15 item 2: the rename was accepted and every routed message then refused
    (422, "destination 'ampersandS3Bucket' does not exist")."""
    created = api.post("/v1/destinations", json=moto_body(s3_server, bucket, creds))
    assert created.status_code == 201, created.text
    uploaded = api.put(
        "/v1/manifest", content=PAGE_AMP_YAML, headers={"Content-Type": "application/yaml"}
    )
    assert uploaded.status_code == 200, uploaded.text

    response = api.patch(f"/v1/destinations/{DESTINATION}", json={"name": "warehouse"})
    assert response.status_code == 200, response.text
    assert any(
        "salesforceToS3 read account" in w and "'warehouse'" in w
        for w in response.json()["warnings"]
    ), response.json()["warnings"]
    assert api.get("/v1/manifest").text == PAGE_AMP_YAML.replace(DESTINATION, "warehouse")
    routed = api.post(
        "/v1/messages",
        json={
            "integration": "salesforceToS3",
            "action": "read",
            "provider": "salesforce",
            "objectName": "account",
            "installationId": "inst-1",
            "result": [{"fields": {"id": "001"}}],
        },
    )
    assert routed.status_code == 202, routed.text
    assert routed.json()["accepted"][0]["destinationId"] == created.json()["id"]
    audit = api.get("/v1/audit").json()["entries"]
    assert any(e["action"] == "manifest.applied" for e in audit)


TAGS_TEMPLATE = "join('/', [join('-', data.result[0].fields.tags[*]), metadata.\"event-id\"])"


def test_a_list_template_over_a_missing_list_is_saved_with_the_fix_and_parks_such_messages(
    api: httpx.Client, s3_server: S3Server, bucket: str, creds: Credentials
) -> None:
    """Was: `data.….tags[*]`, which JMESPath makes null when the samples lack the list, was
    refused at save ("does not render for a sample read message"). Now a missing list is a
    missing field: saved with the warning and its list fallback; at delivery a message with
    the list gets its key, one without is parked naming the field, as for a scalar."""
    from tests.support.polling import wait_for_state

    response = api.post(
        "/v1/destinations", json=moto_body(s3_server, bucket, creds, keyTemplate=TAGS_TEMPLATE)
    )
    assert response.status_code == 201, response.text
    (warning,) = [w for w in response.json()["warnings"] if "fields.tags" in w]
    assert "(data.result[0].fields.tags || ['unknown'])" in warning, warning

    tagged = _with_region("emea")
    tagged["result"][0]["fields"]["tags"] = ["vip", "emea"]
    ok = api.post("/v1/messages", json={"destination": DESTINATION, **tagged})
    untagged = api.post("/v1/messages", json={"destination": DESTINATION, **_with_region("emea")})
    assert ok.status_code == untagged.status_code == 202, (ok.text, untagged.text)
    ok_id = ok.json()["accepted"][0]["eventId"]
    delivered = wait_for_state(api, ok_id, "delivered")
    assert delivered["key"] == f"vip-emea/{ok_id}"
    parked = wait_for_state(api, untagged.json()["accepted"][0]["eventId"], "parked")
    assert "data.result[0].fields.tags is missing" in parked["lastError"], parked
