"""The OpenAPI document a user reads at /docs (issue 15 item 5): every route, parameter,
schema and field described; no description that is a maintainer's docstring (internal
code: DestinationCreate showed "``validate_destination(body.to_fields…``"); request
examples that are the product page's own messages and that s3dest accepts.

Built in-process from `create_api` (the document needs no database or server); the live
document is checked against the running server in tests/integration/test_openapi.py.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import pytest

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
