"""The one translator of pydantic errors into field messages (s3dest.validation_errors)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from s3dest.validation_errors import field_messages, field_path


def kind(_path: str, error: Mapping[str, Any]) -> str:
    return str(error["type"])


def test_paths_index_lists_or_join_with_dots() -> None:
    assert field_path(["result", 0, "raw"]) == "result[0].raw"
    assert field_path(["result", 0, "raw"], indexed=False) == "result.0.raw"
    assert field_path(["raw"], prefix="result[2]") == "result[2].raw"
    assert field_path([], prefix="data") == "data"
    assert field_path([]) == ""


def test_the_whole_input_is_filed_under_the_prefix_or_the_root() -> None:
    errors = [{"type": "model_type", "loc": ()}]
    assert field_messages(errors, kind, root="message") == {"message": "model_type"}
    assert field_messages(errors, kind, root="message", prefix="data") == {"data": "model_type"}


def test_request_errors_drop_the_body_location_and_file_bad_json_under_the_root() -> None:
    errors = [
        {"type": "missing", "loc": ("body", "region")},
        {"type": "json_invalid", "loc": ("body", 7)},
        {"type": "model_attributes_type", "loc": ("body",)},
    ]
    assert field_messages(errors, kind, root="body", request=True) == {
        "region": "missing",
        "body": "json_invalid model_attributes_type",
    }
    # Not a request: a field named "body" is a field like any other.
    assert field_messages([{"type": "extra_forbidden", "loc": ("body",)}], kind, root="x") == {
        "body": "extra_forbidden"
    }
