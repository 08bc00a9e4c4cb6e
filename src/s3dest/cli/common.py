"""What every command shares: settings, the database, `--project`, JSON output, and the one
way an error ends a command (`reports_errors`)."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar, cast

import click

from s3dest.errors import DeliveryError, InvalidInput, S3destError
from s3dest.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


def fail(exc: S3destError, *, diagnosis: bool = False) -> NoReturn:
    """Print the error (and an invalid input's fields) on stderr and exit: 2 for invalid
    input, 1 otherwise. With `diagnosis`, a delivery error also prints its diagnosis (the
    part a person can act on: the policy to attach, the region)."""
    click.echo(f"error: {exc.message}", err=True)
    if diagnosis and isinstance(exc, DeliveryError):
        if exc.diagnosis != exc.message:
            click.echo(exc.diagnosis, err=True)
        sys.exit(1)
    if isinstance(exc, InvalidInput):
        for field, text in exc.fields.items():
            click.echo(f"  {field}: {text}", err=True)
    sys.exit(2 if isinstance(exc, InvalidInput) else 1)


def reports_errors(*, diagnosis: bool = False) -> Callable[[F], F]:
    """A command whose S3destError ends it through `fail` (put it right above the `def`)."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except S3destError as exc:
                fail(exc, diagnosis=diagnosis)

        return cast(F, wrapper)

    return decorate


def settings() -> Settings:
    return Settings.from_env()


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def engine() -> Any:
    from s3dest.runtime import open_engine

    return open_engine(settings())


def project_id(engine: Any, ref: str | None) -> str:
    from s3dest.store.projects import list_projects

    projects = list_projects(engine)
    if ref is None:
        if len(projects) == 1:
            return projects[0].id
        raise click.UsageError(
            "say which project with --project (or S3DEST_PROJECT): "
            + (
                ", ".join(f"{p.name} ({p.id})" for p in projects)
                or "none exist yet; run `s3dest projects create NAME`"
            )
        )
    for p in projects:
        if ref in (p.id, p.name):
            return p.id
    raise click.UsageError(f"no project {ref!r}; `s3dest projects list` shows them")


project_option = click.option(
    "--project", envvar="S3DEST_PROJECT", default=None, help="project id or name"
)
