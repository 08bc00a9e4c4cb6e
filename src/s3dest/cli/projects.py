"""`s3dest projects`: projects (tenants) and their API keys."""

from __future__ import annotations

from typing import Any

import click

from s3dest.cli import common
from s3dest.cli.output import Column, emit, print_json, when
from s3dest.cli.target import Target, open_target, remote_options

PROJECT_COLUMNS: list[Column] = [("name", lambda p: p["name"]), ("id", lambda p: p["id"])]
KEY_COLUMNS: list[Column] = [
    ("id", lambda k: k["id"]),
    ("prefix", lambda k: f"{k['prefix']}…"),
    ("name", lambda k: k["name"]),
    ("created", lambda k: when(k["createdAt"])),
    ("last used", lambda k: when(k["lastUsedAt"], never="never")),
]


@click.group()
def projects() -> None:
    """Projects (tenants) and their API keys."""


@projects.command("create")
@click.argument("name")
@common.json_option
def projects_create(name: str, as_json: bool) -> None:
    """Create a project (NAME unique on this server); prints its id and an API key (shown
    once). Local only: the REST API manages one project, the key's own."""
    from s3dest.store.projects import create_project

    created = create_project(common.engine(), name)
    if as_json:
        print_json(
            {"id": created.project.id, "name": created.project.name, "apiKey": created.api_key}
        )
        return
    click.echo(f"project id: {created.project.id}")
    click.echo(f"api key:    {created.api_key}")
    click.echo("Keep the key: it is stored only as a hash and cannot be shown again.")


@projects.command("list")
@common.json_option
def projects_list(as_json: bool) -> None:
    """Every project of this server (local only)."""
    from s3dest.store.projects import list_projects

    rows = [{"id": p.id, "name": p.name} for p in list_projects(common.engine())]
    emit(
        rows,
        PROJECT_COLUMNS,
        as_json=as_json,
        key="projects",
        empty="no projects yet: `s3dest projects create NAME`",
    )


@projects.group("keys")
def keys() -> None:
    """A project's API keys: list, add, revoke (each change is in the audit log)."""


def _keys(target: Target) -> list[dict[str, Any]]:
    if target.client is not None:
        return target.client.api_keys()
    from s3dest.access import apikeys

    found = apikeys.list_(target.engine, project_id=target.project_id)
    return [apikeys.public_key(k) for k in found]


@keys.command("list")
@remote_options
@common.json_option
def keys_list(project: str | None, url: str | None, api_key: str | None, as_json: bool) -> None:
    """The project's live keys (id, name, prefix, created, last used); never the keys."""
    with open_target(project, url, api_key) as target:
        rows = _keys(target)
    emit(rows, KEY_COLUMNS, as_json=as_json, key="keys", empty="no live keys")


def _add_key(target: Target, name: str) -> dict[str, Any]:
    if target.client is not None:
        return target.client.create_api_key(name)
    from s3dest.access import apikeys
    from s3dest.access.audit import CLI

    created = apikeys.create(target.engine, project_id=target.project_id, name=name, actor=CLI)
    return {"id": created.info.id, "name": created.info.name, "key": created.api_key}


def _print_new_key(created: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(created)
        return
    click.echo(created["key"])
    click.echo(
        f"key id {created['id']} ({created['name']}); keep the key: it cannot be shown again.",
        err=True,
    )


@keys.command("add")
@remote_options
@click.option("--name", default="default", show_default=True, help="what the key is for")
@common.json_option
def keys_add(
    project: str | None, url: str | None, api_key: str | None, name: str, as_json: bool
) -> None:
    """Issue another API key; prints it (shown once)."""
    with open_target(project, url, api_key) as target:
        _print_new_key(_add_key(target, name), as_json)


def pick_key(keys: list[dict[str, Any]], ref: str) -> dict[str, Any]:
    """The key REF names: its id, or its prefix or name when that fits one key."""
    from s3dest.errors import InvalidInput, NotFound

    for key in keys:
        if key["id"] == ref:
            return key
    matches = [k for k in keys if ref in (k["prefix"], k["name"])]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise InvalidInput(
            f"{len(matches)} keys are called {ref!r}",
            {"KEY": "give the key's id (`s3dest projects keys list` shows them)"},
        )
    raise NotFound(f"no live API key {ref!r} in this project; `s3dest projects keys list`")


@keys.command("revoke")
@remote_options
@click.argument("key")
def keys_revoke(project: str | None, url: str | None, api_key: str | None, key: str) -> None:
    """Revoke KEY (its id, or its prefix or name when that fits one key). Every process
    refuses it within a second; the project's last key cannot be revoked."""
    with open_target(project, url, api_key) as target:
        info = pick_key(_keys(target), key)
        if target.client is not None:
            target.client.revoke_api_key(info["id"])
        else:
            from s3dest.access import apikeys
            from s3dest.access.audit import CLI

            apikeys.revoke(
                target.engine, project_id=target.project_id, key_id=info["id"], actor=CLI
            )
    click.echo(f"revoked {info['id']} ({info['prefix']}…, {info['name']})")


@projects.command("add-key")
@remote_options
@click.option("--name", default="default", show_default=True, help="what the key is for")
@common.json_option
def projects_add_key(
    project: str | None, url: str | None, api_key: str | None, name: str, as_json: bool
) -> None:
    """Issue another API key for a project (the same as `projects keys add`)."""
    with open_target(project, url, api_key) as target:
        created = _add_key(target, name)
    if as_json:
        print_json(created)
    else:
        click.echo(created["key"])
