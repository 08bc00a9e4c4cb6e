"""`s3dest destinations`: the S3 destinations of a project."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click
from click.core import ParameterSource

from s3dest.access.audit import CLI
from s3dest.cli import common
from s3dest.cli.common import F


def _destination_options(create: bool) -> Callable[[F], F]:
    def decorate(fn: F) -> F:
        options = [
            click.option("--name", required=create),
            click.option("--bucket", required=create),
            click.option("--region", required=create),
            click.option("--access-key-id", envvar="AWS_ACCESS_KEY_ID" if create else None),
            click.option(
                "--secret-access-key",
                envvar="AWS_SECRET_ACCESS_KEY" if create else None,
                help="default: $AWS_SECRET_ACCESS_KEY",
            ),
            click.option("--role-arn", default=None, help="an IAM role to assume instead of keys"),
            click.option(
                "--server-side-encryption", type=click.Choice(["AES256", "aws:kms"]), default=None
            ),
            click.option("--kms-key-id", default=None),
            click.option("--bucket-key-enabled/--no-bucket-key", default=None),
            click.option(
                "--acl", default=None, help="a canned ACL, e.g. bucket-owner-full-control"
            ),
            click.option("--tag", "tags", multiple=True, help="KEY=VALUE, repeatable"),
            click.option("--session-token", default=None),
            click.option("--key-template", default=None),
            click.option("--storage-class", default=None),
            click.option("--endpoint-url", default=None),
            click.option(
                "--write-mode", type=click.Choice(["overwrite", "create-only"]), default=None
            ),
            click.option("--enabled/--disabled", default=None),
        ]
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


def _destination_body(**kwargs: Any) -> dict[str, Any]:
    names = {
        "name": "name",
        "bucket": "bucket",
        "region": "region",
        "access_key_id": "accessKeyId",
        "secret_access_key": "secretAccessKey",
        "session_token": "sessionToken",
        "key_template": "keyTemplate",
        "storage_class": "storageClass",
        "endpoint_url": "endpointUrl",
        "write_mode": "writeMode",
        "enabled": "enabled",
        "role_arn": "roleArn",
        "server_side_encryption": "serverSideEncryption",
        "kms_key_id": "kmsKeyId",
        "bucket_key_enabled": "bucketKeyEnabled",
        "acl": "acl",
    }
    body = {names[k]: v for k, v in kwargs.items() if k in names and v is not None}
    if kwargs.get("tags"):
        body["tags"] = dict(tag.partition("=")[::2] for tag in kwargs["tags"])
    if body.get("roleArn"):
        # A role replaces keys: AWS_* variables of the shell (s3dest's own identity, often)
        # are not this destination's keys.
        context = click.get_current_context()
        for option, field in (
            ("access_key_id", "accessKeyId"),
            ("secret_access_key", "secretAccessKey"),
        ):
            if context.get_parameter_source(option) is ParameterSource.ENVIRONMENT:
                body.pop(field, None)
    return body


@click.group()
def destinations() -> None:
    """S3 destinations of a project."""


@destinations.command("create")
@common.project_option
@_destination_options(create=True)
@common.reports_errors()
def destinations_create(project: str | None, **kwargs: Any) -> None:
    from s3dest.destinations import service
    from s3dest.destinations.schemas import DestinationPublic, parse_create
    from s3dest.runtime import open_box

    engine = common.engine()
    saved = service.create(
        engine,
        open_box(common.settings()),
        project_id=common.project_id(engine, project),
        body=parse_create(_destination_body(**kwargs)),
        actor=CLI,
    )
    common.print_json(DestinationPublic.from_row(saved.row, saved.warnings).model_dump())


@destinations.command("list")
@common.project_option
def destinations_list(project: str | None) -> None:
    from s3dest.destinations import service

    engine = common.engine()
    for row in service.list_(engine, project_id=common.project_id(engine, project)):
        line = f"{row.id}  {row.name:24}  s3://{row.bucket} ({row.region})  {row.status}"
        click.echo(line)
        if row.diagnosis:
            click.echo(f"    {row.diagnosis.splitlines()[0]}")


@destinations.command("show")
@common.project_option
@click.argument("ref")
@common.reports_errors()
def destinations_show(project: str | None, ref: str) -> None:
    from s3dest.destinations import service
    from s3dest.destinations.schemas import DestinationPublic

    engine = common.engine()
    row = service.get(engine, project_id=common.project_id(engine, project), ref=ref)
    common.print_json(DestinationPublic.from_row(row).model_dump())


@destinations.command("update")
@common.project_option
@click.argument("ref")
@_destination_options(create=False)
@click.option("--clear-session-token", is_flag=True)
@click.option("--clear-key-template", is_flag=True)
@common.reports_errors()
def destinations_update(
    project: str | None,
    ref: str,
    clear_session_token: bool,
    clear_key_template: bool,
    **kwargs: Any,
) -> None:
    """Change some fields (re-validated as a whole). Rotate a secret with --secret-access-key."""
    from s3dest.destinations import service
    from s3dest.destinations.schemas import DestinationPublic, parse_update
    from s3dest.runtime import open_box

    body = _destination_body(**kwargs)
    if clear_session_token:
        body["sessionToken"] = None
    if clear_key_template:
        body["keyTemplate"] = None
    engine = common.engine()
    saved = service.update(
        engine,
        open_box(common.settings()),
        project_id=common.project_id(engine, project),
        ref=ref,
        body=parse_update(body),
        actor=CLI,
    )
    common.print_json(DestinationPublic.from_row(saved.row, saved.warnings).model_dump())


@destinations.command("delete")
@common.project_option
@click.argument("ref")
@click.option("--force", is_flag=True, help="also discard messages still waiting for it")
@common.reports_errors()
def destinations_delete(project: str | None, ref: str, force: bool) -> None:
    from s3dest.destinations import service

    engine = common.engine()
    service.delete(
        engine, project_id=common.project_id(engine, project), ref=ref, force=force, actor=CLI
    )
    click.echo("deleted")


@destinations.command("test")
@common.project_option
@click.argument("ref")
@common.reports_errors()
def destinations_test(project: str | None, ref: str) -> None:
    """Write one small test object (PutObject only) and explain any failure."""
    from s3dest.destinations import service
    from s3dest.runtime import open_box

    engine = common.engine()
    result = service.connection_test(
        engine,
        open_box(common.settings()),
        project_id=common.project_id(engine, project),
        ref=ref,
        actor=CLI,
    )
    common.print_json(result.as_dict())
    if not result.ok:
        sys.exit(1)


@destinations.command("orphans")
@common.project_option
@click.argument("ref")
@common.reports_errors()
def destinations_orphans(project: str | None, ref: str) -> None:
    """Multipart uploads s3dest could not abort, and the lifecycle rule that removes them."""
    from s3dest.destinations import uploads

    engine = common.engine()
    found = uploads.orphaned_uploads(engine, project_id=common.project_id(engine, project), ref=ref)
    common.print_json(found.as_dict())
