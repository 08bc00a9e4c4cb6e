"""How commands print data: aligned tables with headers for people, `--json` for scripts.

JSON is plain UTF-8 (`ensure_ascii=False`): a key prefix shown as "s3d_AbCd…" stays that,
not "s3d_AbCd\\u2026".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import click

#: A column: its header, and how a row (a dict of the API's shape) gives its text.
Column = tuple[str, Callable[[Mapping[str, Any]], Any]]


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def when(ts: float | None, *, never: str = "-") -> str:
    """Unix seconds as UTC, to the second."""
    if ts is None:
        return never
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def table(columns: Sequence[Column], rows: Iterable[Mapping[str, Any]]) -> str:
    """Rows under upper-case headers, each column as wide as its widest cell, two spaces
    apart; the last column is not padded (no trailing spaces)."""
    cells = [[_text(get(row)) for _, get in columns] for row in rows]
    headers = [header.upper() for header, _ in columns]
    widths = [max(len(c) for c in column) for column in zip(headers, *cells, strict=True)]
    lines = []
    for line in (headers, *cells):
        padded = [c.ljust(w) for c, w in zip(line[:-1], widths[:-1], strict=True)] + [line[-1]]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def _text(value: Any) -> str:
    if value is None or value == "":
        return "-"
    # One line per row: a multi-line diagnosis shows its first line.
    return str(value).splitlines()[0] if str(value) else "-"


def emit(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[Column],
    *,
    as_json: bool,
    key: str,
    empty: str,
) -> None:
    """`{key: rows}` as JSON (the REST API's list shape), or a table; `empty` on stderr
    when there is nothing to show (stdout stays a table, or nothing, for scripts)."""
    if as_json:
        print_json({key: list(rows)})
        return
    if not rows:
        click.echo(empty, err=True)
        return
    click.echo(table(columns, rows))
