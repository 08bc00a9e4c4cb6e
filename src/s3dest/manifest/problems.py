"""Problems found in an amp.yaml, each at a 1-based line and column, and the one
`ManifestInvalid` that reports all of them::

    amp.yaml line 7, column 11: unknown key 'destinaton' in integrations[0].read.objects[0];
    allowed: objectName, destination, ...
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from s3dest.errors import ManifestInvalid, utf8_safe

SOURCE: Final = "amp.yaml"


@dataclass(frozen=True, slots=True)
class Problem:
    path: str
    line: int
    column: int
    text: str

    @property
    def message(self) -> str:
        # YAML escapes can produce lone surrogates; keep messages valid UTF-8.
        return utf8_safe(f"{SOURCE} line {self.line}, column {self.column}: {self.text}")


def raise_problems(problems: list[Problem]) -> None:
    """Raise one ManifestInvalid holding every problem (nothing if there are none)."""
    if problems:
        raise manifest_error(problems)


def manifest_error(problems: list[Problem]) -> ManifestInvalid:
    """One ManifestInvalid: the problems in document order, and `fields` keyed by path."""
    problems = sorted(problems, key=lambda p: (p.line, p.column))
    fields: dict[str, str] = {}
    for p in problems:
        path = utf8_safe(p.path)
        fields[path] = f"{fields[path]}; {p.message}" if path in fields else p.message
    if len(problems) == 1:
        summary = problems[0].message
    else:
        summary = f"{SOURCE} has {len(problems)} errors:\n" + "\n".join(
            f"- {p.message}" for p in problems
        )
    return ManifestInvalid(summary, fields)


def one_problem(path: str, line: int, column: int, text: str) -> ManifestInvalid:
    """A ManifestInvalid for a single problem (the document cannot be read any further)."""
    return manifest_error([Problem(path, line, column, text)])
