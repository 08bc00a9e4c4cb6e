"""`s3dest projects`: projects (tenants) and their API keys."""

from __future__ import annotations

import click

from s3dest.cli import common


@click.group()
def projects() -> None:
    """Projects (tenants) and their API keys."""


@projects.command("create")
@click.argument("name")
def projects_create(name: str) -> None:
    """Create a project; prints its id and an API key (shown once)."""
    from s3dest.store.projects import create_project

    created = create_project(common.engine(), name)
    click.echo(f"project id: {created.project.id}")
    click.echo(f"api key:    {created.api_key}")
    click.echo("Keep the key: it is stored only as a hash and cannot be shown again.")


@projects.command("list")
def projects_list() -> None:
    from s3dest.store.projects import list_projects

    for p in list_projects(common.engine()):
        click.echo(f"{p.id}  {p.name}")


@projects.group("keys")
def keys() -> None:
    """A project's API keys: list, add, revoke (each change is in the audit log)."""


@keys.command("list")
@common.project_option
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@common.reports_errors()
def keys_list(project: str | None, as_json: bool) -> None:
    """The project's live keys (id, name, prefix, created, last used); never the keys."""
    from s3dest.access import apikeys

    engine = common.engine()
    found = apikeys.list_(engine, project_id=common.project_id(engine, project))
    if as_json:
        common.print_json([apikeys.public_key(k) for k in found])
        return
    for k in found:
        last = _when(k.last_used_at) if k.last_used_at is not None else "never used"
        click.echo(f"{k.id}  {k.prefix}…  {k.name}  created {_when(k.created_at)}  {last}")


def _when(ts: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@keys.command("add")
@common.project_option
@click.option("--name", default="default", show_default=True, help="what the key is for")
@common.reports_errors()
def keys_add(project: str | None, name: str) -> None:
    """Issue another API key; prints it (shown once)."""
    from s3dest.access import apikeys
    from s3dest.access.audit import CLI

    engine = common.engine()
    created = apikeys.create(
        engine, project_id=common.project_id(engine, project), name=name, actor=CLI
    )
    click.echo(created.api_key)
    click.echo(
        f"key id {created.info.id} ({created.info.name}); keep the key: it cannot be shown again.",
        err=True,
    )


@keys.command("revoke")
@common.project_option
@click.argument("key")
@common.reports_errors()
def keys_revoke(project: str | None, key: str) -> None:
    """Revoke KEY (its id, or its prefix or name when that fits one key). Every process
    refuses it within a second; the project's last key cannot be revoked."""
    from s3dest.access import apikeys
    from s3dest.access.audit import CLI
    from s3dest.store.projects import find_api_key

    engine = common.engine()
    project_id = common.project_id(engine, project)
    info = find_api_key(engine, project_id, key)
    apikeys.revoke(engine, project_id=project_id, key_id=info.id, actor=CLI)
    click.echo(f"revoked {info.id} ({info.prefix}…, {info.name})")


@projects.command("add-key")
@common.project_option
@click.option("--name", default="default", show_default=True, help="what the key is for")
@common.reports_errors()
def projects_add_key(project: str | None, name: str) -> None:
    """Issue another API key for a project (the same as `projects keys add`)."""
    from s3dest.access import apikeys
    from s3dest.access.audit import CLI

    engine = common.engine()
    created = apikeys.create(
        engine, project_id=common.project_id(engine, project), name=name, actor=CLI
    )
    click.echo(created.api_key)
