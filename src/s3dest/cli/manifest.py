"""`s3dest manifest`: validate and apply an amp.yaml."""

from __future__ import annotations

from pathlib import Path

import click

from s3dest.cli import common


@click.group()
def manifest() -> None:
    """amp.yaml: validate and apply."""


@manifest.command("validate")
@common.project_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@common.reports_errors()
def manifest_validate(project: str | None, file: Path) -> None:
    """Check syntax, schema and that every destination exists."""
    from s3dest.manifest.service import check_manifest

    engine = common.engine()
    check_manifest(engine, common.project_id(engine, project), file.read_bytes())
    click.echo(f"{file}: valid")


@manifest.command("apply")
@common.project_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@common.reports_errors()
def manifest_apply(project: str | None, file: Path) -> None:
    from s3dest.access.audit import CLI
    from s3dest.manifest.service import apply_manifest

    engine = common.engine()
    apply_manifest(engine, common.project_id(engine, project), file.read_bytes(), actor=CLI)
    click.echo(f"{file}: applied")
