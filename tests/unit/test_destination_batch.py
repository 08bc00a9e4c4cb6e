"""A destination's `batch` (SPEC §9) in the schemas and the rules, without a server: what a
body may say, what the rules make of it, how a PATCH merges it, and that the OpenAPI
document states batching.py's bounds (tests/integration/test_destination_batch_api.py
drives the same through a live server)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from s3dest.api.app import create_api
from s3dest.batching import (
    MAX_BYTES_RANGE,
    MAX_MESSAGES_RANGE,
    MAX_SECONDS_RANGE,
    BatchSettings,
)
from s3dest.destinations.rules import validate_destination
from s3dest.destinations.schemas import (
    DESTINATION_FIELDS,
    merge_update,
    parse_create,
    parse_update,
)
from s3dest.errors import InvalidInput
from s3dest.runtime import AppState
from s3dest.settings import Settings

BASE = {
    "name": "lake",
    "bucket": "ampersand-integration-bucket",
    "region": "us-west-2",
    "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
    "secretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
}


def _validate(fields: dict[str, Any]) -> BatchSettings | None:
    return validate_destination(
        fields, check_key_template=lambda _t: [], check_endpoint=lambda _h, _p: None
    ).batch


def created(batch: Any) -> BatchSettings | None:
    """The settings a create body with this batch gets (parsed, then checked)."""
    return _validate(parse_create({**BASE, "batch": batch}).to_fields())


def errors(batch: Any) -> dict[str, str]:
    with pytest.raises(InvalidInput) as info:
        created(batch)
    return info.value.fields


def test_no_batch_is_none_and_an_empty_one_takes_every_default() -> None:
    assert _validate(parse_create(BASE).to_fields()) is None
    assert created(None) is None
    assert created({}) == BatchSettings()
    assert created({"maxMessages": None, "compression": None}) == BatchSettings()


def test_each_key_is_taken() -> None:
    every = {"maxMessages": 5, "maxBytes": 2048, "maxSeconds": 3, "format": "jsonl"}
    assert created({**every, "compression": "none"}) == BatchSettings(
        max_messages=5, max_bytes=2048, max_seconds=3.0, compression="none"
    )


@pytest.mark.parametrize(
    ("key", "bounds"),
    [("maxMessages", MAX_MESSAGES_RANGE), ("maxBytes", MAX_BYTES_RANGE)],
)
def test_whole_number_bounds_are_inclusive(key: str, bounds: tuple[int, int]) -> None:
    low, high = bounds
    assert created({key: low}) is not None and created({key: high}) is not None
    for outside in (low - 1, high + 1):
        message = errors({key: outside})[f"batch.{key}"]
        assert f"{outside:,} is outside that range" in message
        assert f"leave {key} out for the default" in message


def test_seconds_bounds_and_non_finite_values() -> None:
    low, high = MAX_SECONDS_RANGE
    assert created({"maxSeconds": low}) == BatchSettings(max_seconds=low)
    assert created({"maxSeconds": high}) == BatchSettings(max_seconds=high)
    assert "0.09 is outside" in errors({"maxSeconds": 0.09})["batch.maxSeconds"]
    # Python's JSON reads NaN and Infinity; they compare false with any bound.
    for value in (float("nan"), float("inf"), float("-inf")):
        assert "not a finite number" in errors({"maxSeconds": value})["batch.maxSeconds"]


def test_the_rules_refuse_what_the_schema_would_also_refuse() -> None:
    """validate_destination takes plain dicts too (the merged PATCH): its own type checks."""

    def rule_errors(batch: Any) -> dict[str, str]:
        with pytest.raises(InvalidInput) as info:
            _validate({**BASE, "batch": batch})
        return info.value.fields

    assert "not a boolean" in rule_errors({"maxMessages": True})["batch.maxMessages"]
    assert "not a string" in rule_errors({"maxBytes": "2048"})["batch.maxBytes"]
    assert "not a boolean" in rule_errors({"maxSeconds": False})["batch.maxSeconds"]
    assert "'zstd'" in rule_errors({"compression": "xz"})["batch.compression"]
    assert "not a batch setting" in rule_errors({"size": 1})["batch.size"]
    assert "must be an object" in rule_errors("gzip")["batch"]


def test_shapes_are_refused_while_parsing_with_the_same_words() -> None:
    assert "not a whole number" in errors({"maxMessages": 2.5})["batch.maxMessages"]
    assert "not a whole number" in errors({"maxMessages": True})["batch.maxMessages"]
    assert "not a number" in errors({"maxSeconds": "5"})["batch.maxSeconds"]
    assert "from 1 to 10,000" in errors({"maxMessages": "5"})["batch.maxMessages"]
    unknown = errors({"maxMessages": 5, "every": 5})
    assert list(unknown) == ["batch.every"]
    assert "maxMessages, maxBytes, maxSeconds, format, compression" in unknown["batch.every"]
    assert "must be an object" in errors(5)["batch"]


def test_patch_merges_batch_key_by_key() -> None:
    current = {**BASE, "batch": BatchSettings(max_messages=7, compression="zstd").to_api()}

    def patched(body: dict[str, Any]) -> BatchSettings | None:
        return _validate(merge_update(current, parse_update(body)))

    assert patched({}) == BatchSettings(max_messages=7, compression="zstd")
    assert patched({"name": "other"}) == BatchSettings(max_messages=7, compression="zstd")
    assert patched({"batch": {"maxSeconds": 1}}) == BatchSettings(
        max_messages=7, max_seconds=1.0, compression="zstd"
    )
    # A null key is its default again; a null batch is no batching.
    assert patched({"batch": {"compression": None}}) == BatchSettings(max_messages=7)
    assert patched({"batch": None}) is None
    # On a destination that does not batch, the keys given and the defaults.
    off = {**BASE, "batch": None}
    assert _validate(merge_update(off, parse_update({"batch": {"maxBytes": 4096}}))) == (
        BatchSettings(max_bytes=4096)
    )


def test_errors_sort_with_their_field() -> None:
    with pytest.raises(InvalidInput) as info:
        _validate({**BASE, "region": "nowhere", "batch": {"maxSeconds": 0, "maxMessages": 0}})
    assert list(info.value.fields) == ["region", "batch.maxMessages", "batch.maxSeconds"]
    assert DESTINATION_FIELDS[-1] == "batch"


def test_the_openapi_document_states_the_bounds() -> None:
    state = cast(AppState, SimpleNamespace(settings=Settings()))
    document: dict[str, Any] = create_api(state).openapi()
    schemas = document["components"]["schemas"]
    for model in ("DestinationCreate", "DestinationUpdate", "DestinationPublic"):
        assert "batch" in schemas[model]["properties"], model
    body = schemas["BatchBody"]
    assert body["additionalProperties"] is False
    for key, (low, high) in (
        ("maxMessages", MAX_MESSAGES_RANGE),
        ("maxBytes", MAX_BYTES_RANGE),
        ("maxSeconds", MAX_SECONDS_RANGE),
    ):
        assert (body["properties"][key]["minimum"], body["properties"][key]["maximum"]) == (
            low,
            high,
        )
    assert "batch" in schemas["DestinationPublic"]["required"]
    assert set(schemas["BatchPublic"]["required"]) == set(BatchSettings().to_api())
