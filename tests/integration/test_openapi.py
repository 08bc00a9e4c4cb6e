"""/openapi.json, served by a real `s3dest serve`, describes the REST contract of SPEC §5:
every route with its method, the destination schemas with the contract's field names,
and the one error shape on 4xx answers. Live answers are checked against it."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import Engine
from tests.support.builders import destination_fields
from tests.support.moto_server import S3Server
from tests.support.polling import wait_until
from tests.support.s3dest_server import S3destEnv, S3destProcess, serve
from tests.support.webhook_receiver import WebhookReceiver

from s3dest.api.openapi_examples import MANIFEST_EXAMPLE, PAGE_TEMPLATE, message_examples
from s3dest.runtime import open_engine
from s3dest.settings import Settings
from s3dest.store.projects import create_project

# SPEC §5, method and path (path parameters compared by position, not by name).
CONTRACT_ROUTES = [
    ("POST", "/v1/destinations"),
    ("GET", "/v1/destinations"),
    ("GET", "/v1/destinations/{id}"),
    ("PATCH", "/v1/destinations/{id}"),
    ("DELETE", "/v1/destinations/{id}"),
    ("POST", "/v1/destinations/{id}/test"),
    ("POST", "/v1/key-templates/preview"),
    ("PUT", "/v1/manifest"),
    ("GET", "/v1/manifest"),
    ("POST", "/v1/messages"),
    ("GET", "/v1/messages/{eventId}"),
    ("GET", "/v1/deliveries"),
    ("POST", "/v1/messages/{eventId}/replay"),
    ("POST", "/v1/destinations/{id}/replay"),
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("GET", "/v1/api-keys"),
    ("POST", "/v1/api-keys"),
    ("DELETE", "/v1/api-keys/{id}"),
    ("GET", "/v1/audit"),
]
CREATE_FIELDS = {
    "name",
    "bucket",
    "region",
    "accessKeyId",
    "secretAccessKey",
    "sessionToken",
    "keyTemplate",
    "storageClass",
    "endpointUrl",
    "writeMode",
    "batch",  # SPEC §9
}
CREATE_REQUIRED = {"name", "bucket", "region"}
#: SPEC §8: the access keys, or roleArn instead of them.
CREATE_ONE_OF = [{"required": ["accessKeyId", "secretAccessKey"]}, {"required": ["roleArn"]}]
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
    "batch",  # SPEC §9: null when the destination does not batch
}
# The routes of this issue and the error statuses each documents with the Error schema.
DOCUMENTED_ERRORS = {
    ("POST", "/v1/destinations"): {401, 409, 422},
    ("GET", "/v1/destinations"): {401},
    ("GET", "/v1/destinations/{}"): {401, 404},
    ("PATCH", "/v1/destinations/{}"): {401, 404, 409, 422},
    ("DELETE", "/v1/destinations/{}"): {401, 404, 409},
    ("POST", "/v1/destinations/{}/test"): {401, 404},
    ("POST", "/v1/destinations/{}/replay"): {401, 404},
    ("POST", "/v1/key-templates/preview"): {401, 422},
}


def normalize(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[S3destProcess, Engine]]:
    """One `s3dest serve` per backend for this module, and an engine on its database."""
    url = None if request.param == "sqlite" else request.getfixturevalue("pg_module_database_url")
    tmp = tmp_path_factory.mktemp(f"openapi-{request.param}")
    env = S3destEnv(data_dir=tmp / "data", database_url=url, extra={"S3DEST_SECRET_KEY": ""})
    process = serve(env, tmp)
    engine = open_engine(Settings(data_dir=env.data_dir, database_url=url), migrate=False)
    try:
        yield process, engine
    finally:
        process.kill()
        engine.dispose()


@pytest.fixture
def schema(server: tuple[S3destProcess, Engine]) -> dict[str, Any]:
    response = httpx.get(f"{server[0].url}/openapi.json", timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    document: dict[str, Any] = response.json()
    return document


@pytest.fixture
def api(server: tuple[S3destProcess, Engine]) -> Iterator[httpx.Client]:
    """A client with the API key of a fresh project."""
    # A fresh name per test: project names are unique on a server (issue 15 item 8).
    api_key = create_project(server[1], f"openapi-{uuid.uuid4().hex[:8]}").api_key
    with httpx.Client(
        base_url=server[0].url, headers={"Authorization": f"Bearer {api_key}"}, timeout=60
    ) as client:
        yield client


def operations(schema: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), normalize(path)): operation
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in ("get", "put", "post", "patch", "delete")
    }


def component(schema: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = schema["components"]["schemas"][name]
    return found


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    assert ref.startswith("#/components/schemas/"), ref
    return component(schema, ref.rsplit("/", 1)[1])


def validator(schema: dict[str, Any], name: str) -> Draft202012Validator:
    """A JSON Schema validator for one component, with the document's other components."""
    return Draft202012Validator(
        {"$ref": f"#/components/schemas/{name}", "components": schema["components"]}
    )


def json_schema_of(schema: dict[str, Any], operation: dict[str, Any], status: str) -> Any:
    content = operation["responses"][status].get("content", {})
    return content.get("application/json", {}).get("schema")


def test_document_is_valid_openapi(schema: dict[str, Any]) -> None:
    # Installed with moto[server]; jsonschema (below) comes with schemathesis.
    validator_module = pytest.importorskip("openapi_spec_validator")
    validator_module.validate(schema)  # raises on an invalid document or a dangling $ref
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "s3dest"
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_every_contract_route_is_present(schema: dict[str, Any]) -> None:
    present = operations(schema)
    missing = [(m, p) for m, p in CONTRACT_ROUTES if (m, normalize(p)) not in present]
    assert missing == []
    for (method, path), operation in present.items():
        if path.startswith("/v1/"):
            assert operation.get("security"), f"{method} {path}"


def test_destination_schemas_use_the_contracts_field_names(schema: dict[str, Any]) -> None:
    ops = operations(schema)
    create = component(schema, "DestinationCreate")
    assert set(create["properties"]) >= CREATE_FIELDS
    assert set(create["required"]) == CREATE_REQUIRED
    assert create["oneOf"] == CREATE_ONE_OF
    assert create.get("additionalProperties") is False
    update = component(schema, "DestinationUpdate")
    assert set(update["properties"]) >= CREATE_FIELDS
    assert not update.get("required")
    for model in (create, update):
        for secret in ("secretAccessKey", "sessionToken"):
            prop = model["properties"][secret]
            variants = prop.get("anyOf", [prop])
            assert any(v.get("writeOnly") for v in variants), (secret, prop)
    public = component(schema, "DestinationPublic")
    assert set(public["properties"]) >= PUBLIC_FIELDS
    assert set(public["required"]) >= PUBLIC_FIELDS
    assert "secretAccessKey" not in public["properties"]
    assert "sessionToken" not in public["properties"]
    assert set(public["properties"]["writeMode"]["enum"]) == {"overwrite", "create-only"}
    assert set(public["properties"]["status"]["enum"]) == {
        "untested",
        "healthy",
        "failing",
        "disabled",
    }

    # The routes use them.
    def body_ref(key: tuple[str, str]) -> str:
        ref: str = ops[key]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        return ref

    assert body_ref(("POST", "/v1/destinations")).endswith("/DestinationCreate")
    assert body_ref(("PATCH", "/v1/destinations/{}")).endswith("/DestinationUpdate")
    for key, status in [
        (("POST", "/v1/destinations"), "201"),
        (("GET", "/v1/destinations/{}"), "200"),
        (("PATCH", "/v1/destinations/{}"), "200"),
    ]:
        assert json_schema_of(schema, ops[key], status)["$ref"].endswith("/DestinationPublic")
    listing = resolve(schema, json_schema_of(schema, ops[("GET", "/v1/destinations")], "200"))
    assert listing["properties"]["destinations"]["items"]["$ref"].endswith("/DestinationPublic")
    assert "204" in ops[("DELETE", "/v1/destinations/{}")]["responses"]
    test_result = resolve(
        schema, json_schema_of(schema, ops[("POST", "/v1/destinations/{}/test")], "200")
    )
    assert {"ok", "key", "diagnosis"} <= set(test_result["properties"])
    preview = ops[("POST", "/v1/key-templates/preview")]
    preview_in = resolve(schema, preview["requestBody"]["content"]["application/json"]["schema"])
    assert {"keyTemplate", "message"} <= set(preview_in["properties"])
    preview_out = resolve(schema, json_schema_of(schema, preview, "200"))
    assert {"key", "warnings"} <= set(preview_out["properties"])
    force = [p for p in ops[("DELETE", "/v1/destinations/{}")]["parameters"] if p["in"] == "query"]
    assert [p["name"] for p in force] == ["force"]


def test_errors_are_documented_with_the_error_shape(schema: dict[str, Any]) -> None:
    error = component(schema, "Error")
    assert error["required"] == ["error"]
    assert set(error["properties"]["error"]["properties"]) == {"code", "message", "fields"}
    ops = operations(schema)
    for key, statuses in DOCUMENTED_ERRORS.items():
        responses = ops[key]["responses"]
        for status in statuses:
            assert str(status) in responses, (key, status)
            ref = json_schema_of(schema, ops[key], str(status))
            assert ref == {"$ref": "#/components/schemas/Error"}, (key, status, ref)
        # Where a 422 is documented, it is the error shape, not FastAPI's default one.
        if "422" in responses:
            assert json_schema_of(schema, ops[key], "422")["$ref"].endswith("/Error"), key


def test_live_answers_match_the_documented_schemas(
    schema: dict[str, Any], api: httpx.Client
) -> None:
    public = validator(schema, "DestinationPublic")
    error = validator(schema, "Error")
    body = {
        "name": "documented",
        "bucket": "ampersand-integration-bucket",
        "region": "us-west-2",
        "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
        "secretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "keyTemplate": "join('/', [metadata.objectName, metadata.\"event-id\"])",
    }
    created = api.post("/v1/destinations", json=body)
    assert created.status_code == 201
    public.validate(created.json())
    public.validate(api.get("/v1/destinations/documented").json())
    public.validate(api.patch("/v1/destinations/documented", json={"enabled": False}).json())
    validator(schema, "DestinationList").validate(api.get("/v1/destinations").json())
    preview = api.post("/v1/key-templates/preview", json={"keyTemplate": body["keyTemplate"]})
    validator(schema, "PreviewResponse").validate(preview.json())

    failures = [
        api.post("/v1/destinations", json={**body, "bucket": "Bad_Bucket"}),  # 422
        api.post("/v1/destinations", json=body),  # 409
        api.get("/v1/destinations/nope"),  # 404
        api.post("/v1/key-templates/preview", json={"keyTemplate": "join("}),  # 422
        api.post(
            "/v1/destinations", content=b"{not json", headers={"Content-Type": "application/json"}
        ),
        httpx.get(f"{api.base_url}/v1/destinations"),  # 401
    ]
    assert [r.status_code for r in failures] == [422, 409, 404, 422, 422, 401]
    assert set(failures[4].json()["error"]["fields"]) == {"body"}
    assert "not valid JSON" in failures[4].json()["error"]["fields"]["body"]
    for response in failures:
        error.validate(response.json())


def test_the_documented_examples_work_as_shown(schema: dict[str, Any], api: httpx.Client) -> None:
    """Issue 15 item 5: the request examples of /docs (the product page's destination,
    messages, templates and amp.yaml) are accepted by the live server as they are."""

    def examples(method: str, path: str, media: str = "application/json") -> dict[str, Any]:
        content = schema["paths"][path][method]["requestBody"]["content"][media]
        return {name: example["value"] for name, example in content["examples"].items()}

    created = api.post("/v1/destinations", json=examples("post", "/v1/destinations")["keys"])
    assert created.status_code == 201, created.text
    for name, body in examples("post", "/v1/messages").items():
        sent = api.post("/v1/messages", json=body)
        assert sent.status_code == 202, (name, sent.text)
    for name, body in examples("post", "/v1/key-templates/preview").items():
        previewed = api.post("/v1/key-templates/preview", json=body)
        assert previewed.status_code == 200, (name, previewed.text)
    for body in examples("patch", "/v1/destinations/{ref}").values():
        patched = api.patch("/v1/destinations/ampersandS3Bucket", json=body)
        assert patched.status_code == 200, patched.text
    for source in examples("put", "/v1/manifest", "application/yaml").values():
        applied = api.put(
            "/v1/manifest", content=source, headers={"Content-Type": "application/yaml"}
        )
        assert applied.status_code == 200, applied.text


def answer_example(schema: dict[str, Any], method: str, path: str, status: str) -> Any:
    """The first example of a route's 2xx JSON answer, as /docs shows it."""
    content = schema["paths"][path][method]["responses"][status]["content"]["application/json"]
    return next(iter(content["examples"].values()))["value"]


def same_fields(live: Any, example: Any, where: str) -> list[str]:
    """Where a live answer and its example have different fields: the answer's own and
    those of the first item of each list of objects (free-form objects such as iamPolicy
    differ by content, not shape)."""
    if not (isinstance(live, dict) and isinstance(example, dict)):
        return []
    found = [] if set(live) == set(example) else [f"{where}: {set(live) ^ set(example)}"]
    for name in set(live) & set(example):
        pair = live[name], example[name]
        if all(isinstance(v, list) and v and isinstance(v[0], dict) for v in pair):
            found += same_fields(pair[0][0], pair[1][0], f"{where}.{name}[0]")
    return found


def test_live_answers_have_the_fields_of_their_examples(
    schema: dict[str, Any], api: httpx.Client, s3_server: S3Server, bucket: str
) -> None:
    """Issue 15 item 5: the answer examples of /docs are what s3dest answers, field for
    field, on each route a user calls first (destination, messages, deliveries, manifest,
    keys, audit, webhooks)."""
    dest = "/v1/destinations/{ref}"
    created = api.post(
        "/v1/destinations",
        json=destination_fields(s3_server, bucket, "ampersandS3Bucket", keyTemplate=PAGE_TEMPLATE),
    )
    assert created.status_code == 201, created.text
    tested = api.post("/v1/destinations/ampersandS3Bucket/test")
    sent = api.post("/v1/messages", json=message_examples()["batch"]["value"])
    assert sent.status_code == 202, sent.text
    event_id = sent.json()["accepted"][0]["eventId"]
    wait_until(
        lambda: api.get(f"/v1/messages/{event_id}").json()["state"] == "delivered",
        60,
        "the page's read message to be delivered",
    )
    with WebhookReceiver() as receiver:
        hook = api.post("/v1/webhooks", json={"url": receiver.url, "description": "on-call"})
        hook_id = hook.json()["id"]
        answers = {
            ("post", "/v1/destinations", "201"): created,
            ("get", "/v1/destinations", "200"): api.get("/v1/destinations"),
            ("get", dest, "200"): api.get("/v1/destinations/ampersandS3Bucket"),
            ("post", f"{dest}/test", "200"): tested,
            ("post", "/v1/messages", "202"): sent,
            ("get", "/v1/messages/{event_id}", "200"): api.get(f"/v1/messages/{event_id}"),
            ("get", "/v1/deliveries", "200"): api.get("/v1/deliveries", params={"limit": 1}),
            ("post", "/v1/messages/{event_id}/redeliver", "200"): api.post(
                f"/v1/messages/{event_id}/redeliver"
            ),
            ("put", "/v1/manifest", "200"): api.put(
                "/v1/manifest",
                content=MANIFEST_EXAMPLE,
                headers={"Content-Type": "application/yaml"},
            ),
            ("get", "/v1/manifest", "200"): api.get(
                "/v1/manifest", headers={"Accept": "application/json"}
            ),
            ("post", "/v1/api-keys", "201"): api.post("/v1/api-keys", json={"name": "ci"}),
            ("get", "/v1/api-keys", "200"): api.get("/v1/api-keys"),
            ("post", "/v1/webhooks", "201"): hook,
            ("get", "/v1/webhooks", "200"): api.get("/v1/webhooks"),
            ("post", "/v1/webhooks/{webhook_id}/test", "200"): api.post(
                f"/v1/webhooks/{hook_id}/test"
            ),
            ("get", "/v1/webhooks/{webhook_id}/deliveries", "200"): api.get(
                f"/v1/webhooks/{hook_id}/deliveries"
            ),
            ("get", "/v1/audit", "200"): api.get("/v1/audit"),
        }
    differences: list[str] = []
    for (method, path, status), answer in answers.items():
        where = f"{method.upper()} {path}"
        assert str(answer.status_code) == status, (where, answer.text)
        example = answer_example(schema, method, path, status)
        differences += same_fields(answer.json(), example, where)
    assert answers[("get", "/v1/deliveries", "200")].json()["nextCursor"]  # a page of two
    assert differences == []
