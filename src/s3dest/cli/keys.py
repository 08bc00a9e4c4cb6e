"""`s3dest render-key`: the key a template gives a message, without writing anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import orjson

from s3dest.cli import common


def _load_message_file(path: Path) -> Any:
    """The file's message, checked: ``{"data": {...}}`` as on the page, or the message
    itself as `s3dest send` takes it."""
    from s3dest.messages import parse_data, parse_incoming

    try:
        raw = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise click.UsageError(f"{path}: not JSON ({exc})") from None
    if isinstance(raw, dict) and set(raw) == {"data"}:
        return raw, parse_data(raw)
    return raw, parse_incoming(raw)


@click.command("render-key")
@click.option("--template", "template", default=None, help="JMESPath key template")
@click.argument("message_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@common.reports_errors()
def render_key(template: str | None, message_file: Path) -> None:
    """Print the key TEMPLATE gives MESSAGE_FILE and the warnings about that key.

    MESSAGE_FILE holds {"data": {...}} as on the product page, or the message as
    `s3dest send` takes it."""
    from s3dest.keys import preview_key

    raw, data = _load_message_file(message_file)
    result = preview_key(template, raw, project_id=data.projectId or "")
    click.echo(result["key"])
    for warning in result["warnings"]:
        click.echo(f"warning: {warning}", err=True)
