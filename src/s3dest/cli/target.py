"""Where a management command acts: this machine's database (local mode, the default) or
a remote s3dest server through its REST API (`--url` or S3DEST_URL, with an API key).

In remote mode the API key picks the project, as it does for `send`; the commands print
the same JSON and tables either way, because both modes hand them the REST API's shapes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from s3dest.cli import common
from s3dest.cli.common import F

if TYPE_CHECKING:
    from s3dest.client import Client


def remote_options(fn: F) -> F:
    """`--url`/`--api-key` (S3DEST_URL/S3DEST_API_KEY) and `--project`, for a command the
    REST API covers."""
    fn = click.option(
        "--api-key",
        envvar="S3DEST_API_KEY",
        default=None,
        help="remote mode: a project API key (or $S3DEST_API_KEY); it picks the project",
    )(fn)
    fn = click.option(
        "--url",
        envvar="S3DEST_URL",
        default=None,
        help="remote mode: manage the s3dest server at URL through its REST API "
        "(or $S3DEST_URL); without it, this machine's database",
    )(fn)
    return common.project_option(fn)


@dataclass
class Target:
    """Local: `engine` and `project_id` are set. Remote: `client` is."""

    engine: Any = None
    project_id: str = ""
    client: Client | None = None


@contextmanager
def open_target(project: str | None, url: str | None, api_key: str | None) -> Iterator[Target]:
    """The place the command acts on, from its `remote_options`."""
    context = click.get_current_context()
    if url is None:
        if context.get_parameter_source("api_key") is ParameterSource.COMMANDLINE:
            raise click.UsageError(
                "--api-key is for remote mode: give the server's --url too (or S3DEST_URL)"
            )
        engine = common.engine()
        yield Target(engine=engine, project_id=common.project_id(engine, project))
        return
    if not api_key:
        raise click.UsageError(
            f"remote mode ({url}) needs a project API key: --api-key or S3DEST_API_KEY "
            "(`s3dest projects create` prints one)"
        )
    if context.get_parameter_source("project") is ParameterSource.COMMANDLINE:
        raise click.UsageError(
            "--project is for local mode: in remote mode (--url) the API key picks the project"
        )
    from s3dest.client import Client

    with Client(url, api_key) as client:
        yield Target(client=client)
