"""The `s3dest` command: one module per command group, assembled here.

Each module imports what its commands need inside them, so a command loads only its own
part of s3dest (`s3dest put` never loads the API, the database or the worker).
"""

from __future__ import annotations

import os

import click

from s3dest.cli.admin import db, secrets
from s3dest.cli.common import CleanErrors
from s3dest.cli.deliveries import deliveries
from s3dest.cli.destinations import destinations
from s3dest.cli.keys import render_key
from s3dest.cli.manifest import manifest
from s3dest.cli.messages import put, send
from s3dest.cli.projects import projects
from s3dest.cli.serving import demo, serve, worker

__all__ = ["main"]


@click.group(cls=CleanErrors)
@click.version_option(package_name="s3dest")
def main() -> None:
    """s3dest: deliver integration data into customers' own S3 buckets."""
    from s3dest import logs

    logs.configure(os.environ.get("S3DEST_LOG_LEVEL", "INFO"))


for _command in (
    serve,
    worker,
    db,
    projects,
    destinations,
    manifest,
    send,
    deliveries,
    secrets,
    render_key,
    put,
    demo,
):
    main.add_command(_command)
