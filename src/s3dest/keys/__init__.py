"""Object keys: compile a template once, build a message's context, render, lint, preview.

    context    the namespaces a template reads: metadata, time, data
    template   `KeyTemplate` (compile, render) and `check_key`, the rules of any key
    samples    the product page's two example messages
    lint       `lint_key_template`: a template checked against the samples
    preview    `preview_key`: a template rendered for a given message

Each module imports only those above it in this list. `lint_key_template` and
`preview_key` are imported on first use from here, as `s3dest` does: they need the
message models (pydantic), which `KeyTemplate` alone does not.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from s3dest.keys.context import (
    METADATA_FIELDS,
    NAMESPACES,
    TIME_FIELDS,
    key_context,
    rfc3339_nano,
    time_namespace,
)
from s3dest.keys.template import DEFAULT_KEY_TEMPLATE, MAX_KEY_BYTES, KeyTemplate, check_key

if TYPE_CHECKING:
    from s3dest.keys.lint import lint_key_template
    from s3dest.keys.preview import preview_key

_LAZY = {"lint_key_template": "s3dest.keys.lint", "preview_key": "s3dest.keys.preview"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 's3dest.keys' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_KEY_TEMPLATE",
    "MAX_KEY_BYTES",
    "METADATA_FIELDS",
    "NAMESPACES",
    "TIME_FIELDS",
    "KeyTemplate",
    "check_key",
    "key_context",
    "lint_key_template",
    "preview_key",
    "rfc3339_nano",
    "time_namespace",
]
