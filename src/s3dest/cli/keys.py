"""`s3dest render-key`: the key a template gives a message, without writing anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import orjson

from s3dest.cli import common


def _load_message_file(path: Path) -> Any:
    from s3dest.messages import parse_data

    try:
        raw = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise click.UsageError(f"{path}: not JSON ({exc})") from None
    return raw, parse_data(raw)


@click.command("render-key")
@click.option("--template", "template", default=None, help="JMESPath key template")
@click.argument("message_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@common.reports_errors()
def render_key(template: str | None, message_file: Path) -> None:
    """Print the key TEMPLATE gives MESSAGE_FILE ({"data": {...}}), and the warnings."""
    from s3dest.keys import preview_key

    raw, data = _load_message_file(message_file)
    result = preview_key(template, raw, project_id=data.projectId or "")
    click.echo(result["key"])
    for warning in result["warnings"]:
        click.echo(f"warning: {warning}", err=True)
