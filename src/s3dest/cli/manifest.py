"""`s3dest manifest`: validate and apply an amp.yaml."""

from __future__ import annotations

from pathlib import Path

import click

from s3dest.cli import common
from s3dest.cli.output import print_json
from s3dest.cli.target import open_target, remote_options


@click.group()
def manifest() -> None:
    """amp.yaml: validate and apply."""


@manifest.command("validate")
@common.project_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@common.json_option
def manifest_validate(project: str | None, file: Path, as_json: bool) -> None:
    """Check syntax, schema and that every destination exists (local; `apply` checks the
    same on a remote server before it saves)."""
    from s3dest.manifest.service import check_manifest

    engine = common.engine()
    check_manifest(engine, common.project_id(engine, project), file.read_bytes())
    if as_json:
        print_json({"file": str(file), "valid": True})
    else:
        click.echo(f"{file}: valid")


@manifest.command("apply")
@remote_options
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@common.json_option
def manifest_apply(
    project: str | None, url: str | None, api_key: str | None, file: Path, as_json: bool
) -> None:
    """Validate FILE and make it the project's amp.yaml (routes take effect at once)."""
    from s3dest.access.audit import CLI
    from s3dest.manifest.service import apply_manifest

    source = file.read_bytes()
    with open_target(project, url, api_key) as target:
        if target.client is not None:
            applied = target.client.put_manifest(source)
        else:
            applied = {
                "manifest": apply_manifest(target.engine, target.project_id, source, actor=CLI)
            }
    if as_json:
        print_json(applied)
    else:
        click.echo(f"{file}: applied")
