"""The rule for keyTemplate: the object key template, checked by `s3dest.keys`' linter."""

from __future__ import annotations

from typing import Any, Protocol

from s3dest.destinations.rules._text import Bad, optional_text, sentence
from s3dest.errors import InvalidInput


class KeyTemplateChecker(Protocol):
    """Checks an object key template: returns warnings, or raises `KeyTemplateInvalid`
    (any `InvalidInput`) when the template cannot be used. The real one is in
    `s3dest.keys`."""

    def __call__(self, template: str, /) -> list[str]: ...


def check_template(value: Any, check: KeyTemplateChecker, warnings: list[str]) -> str | None:
    text = optional_text("keyTemplate", value)
    if text is None:
        return None
    try:
        found = check(text)
    except InvalidInput as exc:
        message = exc.fields.get("keyTemplate")
        if message is None:
            message = " ".join(exc.fields.values()) if exc.fields else exc.message
        raise Bad(sentence(message)) from None
    warnings.extend(found)
    return text
