"""What every command shares: settings, the database, `--project`, and the one way an error
ends a command (`fail`, applied to every command by `CleanErrors`, the top group's class)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar, cast

import click

from s3dest.cli.output import print_json as print_json
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
    """A command whose S3destError ends it through `fail` with its diagnosis (put it right
    above the `def`). Every other command gets `fail` without it from `CleanErrors`."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except S3destError as exc:
                fail(exc, diagnosis=diagnosis)

        return cast(F, wrapper)

    return decorate


class CleanErrors(click.Group):
    """The top group: no command ends in a traceback for what a person can fix. s3dest's
    own errors, an unreachable server (remote mode, `send`) and a file or port the system
    refused are printed as one `error:` line; anything else is a bug and keeps its
    traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except S3destError as exc:
            fail(exc)
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            click.echo(f"error: {exc.strerror or exc}{where}", err=True)
            sys.exit(1)
        except Exception as exc:
            # httpx only where a command loaded it: importing it here costs every command.
            httpx = sys.modules.get("httpx")
            if httpx is None or not isinstance(exc, httpx.TransportError):
                raise
            click.echo(
                f"error: cannot reach {_url_of(exc)}: {exc or type(exc).__name__}. Is "
                "`s3dest serve` running there? Check --url (or S3DEST_URL)",
                err=True,
            )
            sys.exit(1)


def _url_of(exc: Any) -> str:
    try:
        return str(exc.request.url)
    except RuntimeError:  # httpx raises it for an error that carries no request
        return "the server"


def settings() -> Settings:
    return Settings.from_env()


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
    "--project", envvar="S3DEST_PROJECT", default=None, help="project id or name (local mode)"
)
json_option = click.option("--json", "as_json", is_flag=True, help="print JSON (plain UTF-8)")
