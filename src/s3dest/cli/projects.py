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


@projects.command("add-key")
@common.project_option
def projects_add_key(project: str | None) -> None:
    """Issue another API key for a project."""
    from s3dest.store.projects import add_api_key

    engine = common.engine()
    click.echo(add_api_key(engine, common.project_id(engine, project)))
