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
from s3dest.cli.output import Column, emit, print_json
from s3dest.cli.target import Target, open_target, remote_options

# Batching (SPEC §9). --batch alone turns it on with the defaults; a --batch-* value turns it
# on too. An update sends only the values given: the API merges them into the current ones.
_BATCH_OPTIONS = [
    click.option(
        "--batch/--no-batch",
        default=None,
        help="many messages in one JSON Lines object (the --batch-* values, or the "
        "defaults); --no-batch: one object per message again",
    ),
    click.option(
        "--batch-max-messages", type=int, default=None, help="at most this many messages an object"
    ),
    click.option(
        "--batch-max-bytes",
        type=int,
        default=None,
        help="at most this many bytes of messages an object, before compression",
    ),
    click.option(
        "--batch-max-seconds",
        type=float,
        default=None,
        help="write a batch at the latest this long after its first message",
    ),
    click.option("--batch-compression", type=click.Choice(["gzip", "zstd", "none"]), default=None),
]
#: --batch-* option -> the key of `batch` it sets.
_BATCH_KEYS = {
    "batch_max_messages": "maxMessages",
    "batch_max_bytes": "maxBytes",
    "batch_max_seconds": "maxSeconds",
    "batch_compression": "compression",
}


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
            *_BATCH_OPTIONS,
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
    batch = {
        key: kwargs[option] for option, key in _BATCH_KEYS.items() if kwargs.get(option) is not None
    }
    if kwargs.get("batch") is False:
        if batch:
            raise click.UsageError(
                "--no-batch turns batching off; leave out the --batch-* values, or --no-batch"
            )
        body["batch"] = None
    elif batch or kwargs.get("batch"):
        body["batch"] = batch
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


#: What the list says of a destination nothing has written to yet.
_UNTESTED = {"untested": "not tested yet: run `s3dest destinations test NAME`"}

COLUMNS: list[Column] = [
    ("name", lambda d: d["name"]),
    ("id", lambda d: d["id"]),
    ("bucket", lambda d: f"s3://{d['bucket']}"),
    ("region", lambda d: d["region"]),
    ("status", lambda d: d["status"]),
    ("diagnosis", lambda d: d.get("diagnosis") or _UNTESTED.get(d["status"])),
]


def _public(row: Any, warnings: Any = ()) -> dict[str, Any]:
    from s3dest.destinations.schemas import DestinationPublic

    return DestinationPublic.from_row(row, warnings).model_dump()


def _box() -> Any:
    from s3dest.runtime import open_box

    return open_box(common.settings())


@destinations.command("create")
@remote_options
@_destination_options(create=True)
@common.json_option
def destinations_create(
    project: str | None, url: str | None, api_key: str | None, as_json: bool, **kwargs: Any
) -> None:
    """Create a destination; prints it as JSON (never its secret)."""
    body = _destination_body(**kwargs)
    with open_target(project, url, api_key) as target:
        if target.client is not None:
            print_json(target.client.create_destination(**body))
            return
        from s3dest.destinations import service
        from s3dest.destinations.schemas import parse_create

        saved = service.create(
            target.engine,
            _box(),
            project_id=target.project_id,
            body=parse_create(body),
            actor=CLI,
        )
    print_json(_public(saved.row, saved.warnings))


@destinations.command("list")
@remote_options
@common.json_option
def destinations_list(
    project: str | None, url: str | None, api_key: str | None, as_json: bool
) -> None:
    """The project's destinations: a table, or --json."""
    with open_target(project, url, api_key) as target:
        if target.client is not None:
            rows = target.client.destinations()
        else:
            from s3dest.destinations import service

            rows = [_public(r) for r in service.list_(target.engine, project_id=target.project_id)]
    emit(
        rows,
        COLUMNS,
        as_json=as_json,
        key="destinations",
        empty="no destinations yet: `s3dest destinations create --help`",
    )


@destinations.command("show")
@remote_options
@click.argument("ref")
@common.json_option
def destinations_show(
    project: str | None, url: str | None, api_key: str | None, ref: str, as_json: bool
) -> None:
    """One destination (by name or id) as JSON, with the IAM policy it needs."""
    with open_target(project, url, api_key) as target:
        if target.client is not None:
            print_json(target.client.destination(ref))
            return
        from s3dest.destinations import service

        print_json(_public(service.get(target.engine, project_id=target.project_id, ref=ref)))


@destinations.command("update")
@remote_options
@click.argument("ref")
@_destination_options(create=False)
@click.option("--clear-session-token", is_flag=True)
@click.option("--clear-key-template", is_flag=True)
@common.json_option
def destinations_update(
    project: str | None,
    url: str | None,
    api_key: str | None,
    ref: str,
    clear_session_token: bool,
    clear_key_template: bool,
    as_json: bool,
    **kwargs: Any,
) -> None:
    """Change some fields (re-validated as a whole). Rotate a secret with --secret-access-key."""
    body = _destination_body(**kwargs)
    if clear_session_token:
        body["sessionToken"] = None
    if clear_key_template:
        body["keyTemplate"] = None
    with open_target(project, url, api_key) as target:
        if target.client is not None:
            print_json(target.client.update_destination(ref, **body))
            return
        from s3dest.destinations import service
        from s3dest.destinations.schemas import parse_update

        saved = service.update(
            target.engine,
            _box(),
            project_id=target.project_id,
            ref=ref,
            body=parse_update(body),
            actor=CLI,
        )
    print_json(_public(saved.row, saved.warnings))


@destinations.command("delete")
@remote_options
@click.argument("ref")
@click.option("--force", is_flag=True, help="also discard messages still waiting for it")
def destinations_delete(
    project: str | None, url: str | None, api_key: str | None, ref: str, force: bool
) -> None:
    """Delete a destination (refused while messages wait for it, unless --force)."""
    with open_target(project, url, api_key) as target:
        if target.client is not None:
            target.client.delete_destination(ref, force=force)
        else:
            from s3dest.destinations import service

            service.delete(
                target.engine, project_id=target.project_id, ref=ref, force=force, actor=CLI
            )
    click.echo("deleted")


@destinations.command("test")
@remote_options
@click.argument("ref")
@common.json_option
def destinations_test(
    project: str | None, url: str | None, api_key: str | None, ref: str, as_json: bool
) -> None:
    """Write one small test object (PutObject only) and explain any failure."""
    with open_target(project, url, api_key) as target:
        result = _test(target, ref)
    print_json(result)
    if not result["ok"]:
        sys.exit(1)


def _test(target: Target, ref: str) -> dict[str, Any]:
    if target.client is not None:
        return target.client.test_destination(ref)
    from s3dest.destinations import service

    result = service.connection_test(
        target.engine, _box(), project_id=target.project_id, ref=ref, actor=CLI
    )
    found: dict[str, Any] = result.as_dict()
    return found


@destinations.command("orphans")
@remote_options
@click.argument("ref")
@common.json_option
def destinations_orphans(
    project: str | None, url: str | None, api_key: str | None, ref: str, as_json: bool
) -> None:
    """Multipart uploads s3dest could not abort, and the lifecycle rule that removes them."""
    with open_target(project, url, api_key) as target:
        if target.client is not None:
            print_json(target.client.orphaned_uploads(ref))
            return
        from s3dest.destinations import uploads

        found = uploads.orphaned_uploads(target.engine, project_id=target.project_id, ref=ref)
    print_json(found.as_dict())
