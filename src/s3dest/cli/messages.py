"""`s3dest send` (messages to a server) and `s3dest put` (one message straight to a bucket)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import orjson

from s3dest.cli import common


def _read_messages(path: Path) -> list[Any]:
    text = path.read_bytes()
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        # JSON Lines: one message per line.
        value = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    value.append(orjson.loads(line))
                except orjson.JSONDecodeError as exc:
                    raise click.UsageError(f"{path} line {number}: not JSON ({exc})") from None
    if isinstance(value, dict) and "messages" in value:
        value = value["messages"]
    return value if isinstance(value, list) else [value]


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--url", envvar="S3DEST_URL", default="http://127.0.0.1:8080", show_default=True)
@click.option("--api-key", envvar="S3DEST_API_KEY", required=True, help="or $S3DEST_API_KEY")
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1, None))
@click.option(
    "--idempotency-key",
    default=None,
    metavar="KEY",
    help="send the Idempotency-Key header: sending the same FILE again with the same KEY "
    "stores nothing twice and prints the same event ids (the second and later requests "
    "of a large FILE use KEY/2, KEY/3…)",
)
@common.json_option
def send(
    file: Path,
    url: str,
    api_key: str,
    batch_size: int,
    idempotency_key: str | None,
    as_json: bool,
) -> None:
    """Send FILE (a message, a list, {"messages": [...]}, or JSON Lines) to a server; prints
    each message's event id and destination once the server has stored it."""
    from s3dest.client import Client

    messages = _read_messages(file)
    accepted: list[dict[str, str]] = []
    with Client(url, api_key) as client:
        for number, start in enumerate(range(0, len(messages), batch_size), 1):
            key = idempotency_key
            if key is not None and number > 1:
                # One key per request: a retry of the command replays each stored request.
                key = f"{key}/{number}"
            batch = client.send_batch(messages[start : start + batch_size], idempotency_key=key)
            accepted.extend(batch)
            if not as_json:
                for item in batch:
                    click.echo(f"{item['eventId']}  -> {item['destinationId']}")
    if as_json:
        common.print_json({"accepted": accepted})


@click.command()
@click.argument("message_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--bucket", required=True)
@click.option("--region", required=True)
@click.option("--key-template", default=None)
@click.option("--storage-class", default=None)
@click.option("--endpoint-url", default=None, envvar="AWS_ENDPOINT_URL")
@click.option("--create-only", is_flag=True, help="never overwrite (If-None-Match: *)")
@click.option("--profile", default=None, help="a profile of the shared AWS config files")
@click.option("--role-arn", default=None, help="assume this role (sts:AssumeRole) and write as it")
@click.option("--external-id", default=None, help="the ExternalId the role's trust policy asks")
@common.json_option
@common.reports_errors(diagnosis=True)
def put(
    message_file: Path,
    bucket: str,
    region: str,
    key_template: str | None,
    storage_class: str | None,
    endpoint_url: str | None,
    create_only: bool,
    profile: str | None,
    role_arn: str | None,
    external_id: str | None,
    as_json: bool,
) -> None:
    """Write one message ({"data": {...}}) to a bucket, signed with the standard AWS
    credential chain (AWS_* variables, AWS_PROFILE/--profile, web identity, metadata), or
    with --role-arn as a role that identity assumes, as the workers do
    (S3DEST_STS_ENDPOINT_URL and S3DEST_ROLE_SESSION_SECONDS apply)."""
    from s3dest.ingest.put import put_message_file

    if external_id is not None and role_arn is None:
        raise click.UsageError("--external-id goes with --role-arn")
    if role_arn is not None:
        from s3dest.runtime import configure_sts
        from s3dest.settings import Settings

        configure_sts(Settings.from_env())

    result = put_message_file(
        message_file,
        bucket=bucket,
        region=region,
        key_template=key_template,
        storage_class=storage_class,
        endpoint_url=endpoint_url,
        create_only=create_only,
        profile=profile,
        role_arn=role_arn,
        external_id=external_id,
    )
    if as_json:
        common.print_json({"bucket": result.bucket, "key": result.key, "etag": result.etag})
        return
    click.echo(f"bucket: {result.bucket}")
    click.echo(f"key:    {result.key}")
    click.echo(f"etag:   {result.etag}")
