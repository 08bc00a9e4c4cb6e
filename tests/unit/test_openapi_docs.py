"""The OpenAPI document a user reads at /docs (issue 15 item 5): every route, parameter,
schema and field described; no description that is a maintainer's docstring (internal
code: DestinationCreate showed "``validate_destination(body.to_fields…``"); request
examples that are the product page's own messages and that s3dest accepts.

Built in-process from `create_api` (the document needs no database or server); the live
document is checked against the running server in tests/integration/test_openapi.py.
"""

from __future__ import annotations

import csv
import inspect
import io
import json
import re
import sys
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import pytest
from ruamel.yaml import YAML

from s3dest.api.app import create_api
from s3dest.runtime import AppState
from s3dest.settings import Settings

METHODS = ("get", "put", "post", "patch", "delete")
HOW = (
    "describe it for the API's users: a route with description= on its decorator (or in "
    "OPERATIONS of s3dest/api/openapi_docs.py), a parameter or field with "
    "Field/Query/Path(description=...) (or PARAMETERS/FIELDS there), a schema in SCHEMAS "
    "there; a docstring is for maintainers and does not count"
)
# Code in a description: reStructuredText literals, or a call of a snake_case function.
CODE = re.compile(r"``|\b[a-z]+_[a-z0-9_]*\(|\bself\.|\bdef ")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    state = cast(AppState, SimpleNamespace(settings=Settings()))
    found: dict[str, Any] = create_api(state).openapi()
    return found


def _properties(where: str, schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(place, property schema) of every property, inline objects and arrays included."""
    for name, prop in schema.get("properties", {}).items():
        place = f"{where}.{name}"
        yield place, prop
        yield from _properties(place, prop)
        for variant in prop.get("anyOf", []) + prop.get("oneOf", []) + [prop.get("items", {})]:
            yield from _properties(place, variant)


def descriptions(document: dict[str, Any]) -> Iterator[tuple[str, str | None]]:
    """(place, description) of everything the document should describe."""
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            where = f"{method.upper()} {path}"
            yield f"{where} summary", operation.get("summary")
            yield where, operation.get("description")
            for parameter in operation.get("parameters", []):
                yield f"{where} ?{parameter['name']}", parameter.get("description")
    for name, schema in document["components"]["schemas"].items():
        yield name, schema.get("description")
        yield from ((p, s.get("description")) for p, s in _properties(name, schema))


def docstrings() -> set[str]:
    """Every docstring (and each paragraph of one) of s3dest's loaded classes and functions."""
    found: set[str] = set()
    for module_name, module in list(sys.modules.items()):
        if not module_name.startswith("s3dest") or module is None:
            continue
        for _, obj in inspect.getmembers(module):
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and obj.__doc__:
                text = inspect.cleandoc(obj.__doc__)
                found.add(text)
                found.update(p.strip() for p in text.split("\n\n") if len(p.strip()) > 20)
    return found


def test_every_route_parameter_schema_and_field_has_a_description(
    document: dict[str, Any],
) -> None:
    missing = [place for place, text in descriptions(document) if not (text or "").strip()]
    assert missing == [], HOW


def test_no_description_is_a_docstring_or_shows_code(document: dict[str, Any]) -> None:
    internal = docstrings()
    assert "A destination as the API shows it: never the secret or the session token." in (
        internal
    )  # the walk does find the models' docstrings
    leaked = [
        (place, text)
        for place, text in descriptions(document)
        if text and (text.strip() in internal or CODE.search(text))
    ]
    assert leaked == [], HOW


def _examples(document: dict[str, Any], method: str, path: str, media: str) -> dict[str, Any]:
    found: dict[str, Any] = document["paths"][path][method]["requestBody"]["content"][media][
        "examples"
    ]
    return {name: example["value"] for name, example in found.items()}


def test_examples_are_the_product_pages_and_are_accepted(document: dict[str, Any]) -> None:
    from s3dest.destinations.schemas import parse_create
    from s3dest.keys import preview_key
    from s3dest.keys.samples import READ_EXAMPLE, SUBSCRIBE_EXAMPLE
    from s3dest.manifest import parse_manifest
    from s3dest.messages import parse_incoming

    messages = _examples(document, "post", "/v1/messages", "application/json")
    assert set(messages) >= {"read", "subscribe"}
    for name, page in (("read", READ_EXAMPLE), ("subscribe", SUBSCRIBE_EXAMPLE)):
        sent = messages[name]
        assert sent["result"] == page["data"]["result"], name  # the page's records
        assert sent["installationId"] == page["data"]["installationId"], name
        parse_incoming(sent)  # s3dest accepts it as it is
    for sent in messages["batch"]["messages"]:
        parse_incoming(sent)

    for body in _examples(document, "post", "/v1/destinations", "application/json").values():
        parse_create(body)
    for body in _examples(
        document, "post", "/v1/key-templates/preview", "application/json"
    ).values():
        result = preview_key(body["keyTemplate"], body.get("message"), project_id="p")
        assert result["key"], body
    for source in _examples(document, "put", "/v1/manifest", "application/yaml").values():
        assert parse_manifest(source).to_dict()["integrations"][0]["name"] == "salesforceToS3"


# -- response examples -------------------------------------------------------------------------


def _answers(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(place, media type, content) of every 2xx answer that has a body."""
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation.get("responses", {}).items():
                if status.startswith("2"):
                    for media, content in response.get("content", {}).items():
                        yield f"{method.upper()} {path} {status}", media, content


def _closed(node: Any) -> Any:
    """The schema with every object that lists its properties closed to others, so an
    example with a field the model lacks (a renamed or removed one) is invalid."""
    if isinstance(node, list):
        return [_closed(item) for item in node]
    if not isinstance(node, dict):
        return node
    closed = {name: _closed(value) for name, value in node.items()}
    if "properties" in node and "additionalProperties" not in node:
        closed["additionalProperties"] = False
    return closed


def test_every_2xx_answer_with_a_body_has_an_example(document: dict[str, Any]) -> None:
    """Was: requests had the product page's examples, answers none (issue 15 item 5)."""
    answers = list(_answers(document))
    assert len([a for a in answers if a[1] == "application/json"]) >= 25  # the walk finds them
    missing = [(place, media) for place, media, content in answers if not content.get("examples")]
    assert missing == [], "add it to s3dest/api/openapi_responses.py"


def test_every_answer_example_is_valid_for_its_schema(document: dict[str, Any]) -> None:
    """An example cannot drift from the model: a field renamed, removed or of another type,
    or a required one missing, fails here."""
    from jsonschema import Draft202012Validator

    from s3dest.delivery.search import EXPORT_COLUMNS

    components = _closed(document["components"])
    record = Draft202012Validator(
        {"$ref": "#/components/schemas/MessageRecord", "components": components}
    )
    checked = 0
    for place, media, content in _answers(document):
        for name, example in content.get("examples", {}).items():
            value = example["value"]
            if media == "application/yaml":
                # As a client reads it (schemathesis parses YAML answers too).
                value = YAML(typ="safe").load(value)
            if "schema" in content:
                schema = {**_closed(content["schema"]), "components": components}
                errors = [e.message for e in Draft202012Validator(schema).iter_errors(value)]
                assert errors == [], (place, media, name)
            elif media == "application/x-ndjson":
                for line in value.splitlines():
                    record.validate(json.loads(line))
            elif media == "text/csv":
                assert next(csv.reader(io.StringIO(value))) == list(EXPORT_COLUMNS), place
            else:
                raise AssertionError(f"{place} {media}: no schema to check the example with")
            checked += 1
    assert checked >= 30


def test_the_closed_schemas_refuse_a_field_the_model_lacks(document: dict[str, Any]) -> None:
    """The check above can fail: an example of GET /v1/messages/{event_id} with a field
    renamed (deliveredAt → delivered_at) is refused."""
    from jsonschema import Draft202012Validator

    content = document["paths"]["/v1/messages/{event_id}"]["get"]["responses"]["200"]
    content = content["content"]["application/json"]
    example = dict(content["examples"]["delivered"]["value"])
    example["delivered_at"] = example.pop("deliveredAt")
    schema = {**_closed(content["schema"]), "components": _closed(document["components"])}
    messages = [e.message for e in Draft202012Validator(schema).iter_errors(example)]
    assert any("deliveredAt" in m for m in messages) and any("delivered_at" in m for m in messages)


def test_the_patch_examples_give_keys_without_warnings() -> None:
    """Was: the PATCH example's template (objectName/operationId) parked every subscribe
    message (the page's subscribe message has no operationId) and was saved with a warning."""
    from s3dest.api.openapi_examples import request_examples
    from s3dest.keys import preview_key

    examples = request_examples()[("patch", "/v1/destinations/{ref}")]["application/json"]
    template = examples["template"]["value"]["keyTemplate"]
    assert preview_key(template, None, project_id="p")["warnings"] == []
