"""The `s3dest` command."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson

from s3dest.errors import DeliveryError, InvalidInput, S3destError
from s3dest.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


def _fail(exc: S3destError) -> None:
    click.echo(f"error: {exc.message}", err=True)
    if isinstance(exc, InvalidInput):
        for field, text in exc.fields.items():
            click.echo(f"  {field}: {text}", err=True)
    sys.exit(2 if isinstance(exc, InvalidInput) else 1)


def _settings() -> Settings:
    return Settings.from_env()


def _print(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def _engine() -> Any:
    from s3dest.bootstrap import open_engine

    return open_engine(_settings())


def _project_id(engine: Any, ref: str | None) -> str:
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


@click.group()
@click.version_option(package_name="s3dest")
def main() -> None:
    """s3dest: deliver integration data into customers' own S3 buckets."""
    from s3dest import logs

    logs.configure(os.environ.get("S3DEST_LOG_LEVEL", "INFO"))


# --------------------------------------------------------------------------- serving
@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--no-workers", is_flag=True, help="serve the API only; run `s3dest worker` apart")
def serve(host: str, port: int, no_workers: bool) -> None:
    """Serve the REST API and dashboard (and deliver, unless --no-workers)."""
    import uvicorn

    from s3dest.api.app import create_app
    from s3dest.bootstrap import open_state

    try:
        state = open_state(_settings())
    except S3destError as exc:
        _fail(exc)
        return
    app = create_app(state, workers=not no_workers)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


@main.command()
def worker() -> None:
    """Deliver queued messages (no API). Stops gracefully on SIGTERM/SIGINT."""
    import asyncio

    from s3dest.bootstrap import open_box, open_engine
    from s3dest.delivery.worker import Worker

    settings = _settings()
    engine = open_engine(settings)
    instance = Worker(engine, settings, open_box(settings))

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, instance.stop)
        await instance.run()

    asyncio.run(run())


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply migrations (also done on every start)."""
    try:
        _engine()
    except S3destError as exc:
        _fail(exc)
    click.echo("database is up to date")


# --------------------------------------------------------------------------- projects
@main.group()
def projects() -> None:
    """Projects (tenants) and their API keys."""


@projects.command("create")
@click.argument("name")
def projects_create(name: str) -> None:
    """Create a project; prints its id and an API key (shown once)."""
    from s3dest.store.projects import create_project

    created = create_project(_engine(), name)
    click.echo(f"project id: {created.project.id}")
    click.echo(f"api key:    {created.api_key}")
    click.echo("Keep the key: it is stored only as a hash and cannot be shown again.")


@projects.command("list")
def projects_list() -> None:
    from s3dest.store.projects import list_projects

    for p in list_projects(_engine()):
        click.echo(f"{p.id}  {p.name}")


@projects.command("add-key")
@project_option
def projects_add_key(project: str | None) -> None:
    """Issue another API key for a project."""
    from s3dest.store.projects import add_api_key

    engine = _engine()
    click.echo(add_api_key(engine, _project_id(engine, project)))


# --------------------------------------------------------------------------- destinations
def _destination_options(create: bool) -> Callable[[F], F]:
    def decorate(fn: F) -> F:
        options = [
            click.option("--name", required=create),
            click.option("--bucket", required=create),
            click.option("--region", required=create),
            click.option(
                "--access-key-id", envvar="AWS_ACCESS_KEY_ID" if create else None, required=create
            ),
            click.option(
                "--secret-access-key",
                envvar="AWS_SECRET_ACCESS_KEY" if create else None,
                required=create,
                help="default: $AWS_SECRET_ACCESS_KEY",
            ),
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
    }
    return {names[k]: v for k, v in kwargs.items() if k in names and v is not None}


@main.group()
def destinations() -> None:
    """S3 destinations of a project."""


@destinations.command("create")
@project_option
@_destination_options(create=True)
def destinations_create(project: str | None, **kwargs: Any) -> None:
    from s3dest.bootstrap import open_box
    from s3dest.destinations import service

    engine = _engine()
    try:
        saved = service.create(
            engine, open_box(_settings()), _project_id(engine, project), _destination_body(**kwargs)
        )
    except S3destError as exc:
        _fail(exc)
        return
    _print(service.public(saved.row, saved.warnings))


@destinations.command("list")
@project_option
def destinations_list(project: str | None) -> None:
    from s3dest.destinations import service

    engine = _engine()
    for row in service.list_(engine, _project_id(engine, project)):
        line = f"{row.id}  {row.name:24}  s3://{row.bucket} ({row.region})  {row.status}"
        click.echo(line)
        if row.diagnosis:
            click.echo(f"    {row.diagnosis.splitlines()[0]}")


@destinations.command("show")
@project_option
@click.argument("ref")
def destinations_show(project: str | None, ref: str) -> None:
    from s3dest.destinations import service

    engine = _engine()
    try:
        _print(service.public(service.get(engine, _project_id(engine, project), ref)))
    except S3destError as exc:
        _fail(exc)


@destinations.command("update")
@project_option
@click.argument("ref")
@_destination_options(create=False)
@click.option("--clear-session-token", is_flag=True)
@click.option("--clear-key-template", is_flag=True)
def destinations_update(
    project: str | None,
    ref: str,
    clear_session_token: bool,
    clear_key_template: bool,
    **kwargs: Any,
) -> None:
    """Change some fields (re-validated as a whole). Rotate a secret with --secret-access-key."""
    from s3dest.bootstrap import open_box
    from s3dest.destinations import service

    body = _destination_body(**kwargs)
    if clear_session_token:
        body["sessionToken"] = None
    if clear_key_template:
        body["keyTemplate"] = None
    engine = _engine()
    try:
        saved = service.update_(
            engine, open_box(_settings()), _project_id(engine, project), ref, body
        )
    except S3destError as exc:
        _fail(exc)
        return
    _print(service.public(saved.row, saved.warnings))


@destinations.command("delete")
@project_option
@click.argument("ref")
@click.option("--force", is_flag=True, help="also discard messages still waiting for it")
def destinations_delete(project: str | None, ref: str, force: bool) -> None:
    from s3dest.destinations import service

    engine = _engine()
    try:
        service.delete(engine, _project_id(engine, project), ref, force=force)
    except S3destError as exc:
        _fail(exc)
    click.echo("deleted")


@destinations.command("test")
@project_option
@click.argument("ref")
def destinations_test(project: str | None, ref: str) -> None:
    """Write one small test object (PutObject only) and explain any failure."""
    from s3dest.bootstrap import open_box
    from s3dest.destinations import service

    engine = _engine()
    try:
        result = service.connection_test(
            engine, open_box(_settings()), _project_id(engine, project), ref
        )
    except S3destError as exc:
        _fail(exc)
        return
    _print(result.as_dict())
    if not result.ok:
        sys.exit(1)


# --------------------------------------------------------------------------- manifest
@main.group()
def manifest() -> None:
    """amp.yaml: validate and apply."""


@manifest.command("validate")
@project_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def manifest_validate(project: str | None, file: Path) -> None:
    """Check syntax, schema and that every destination exists."""
    from s3dest.manifest_service import check_manifest

    engine = _engine()
    try:
        check_manifest(engine, _project_id(engine, project), file.read_bytes())
    except S3destError as exc:
        _fail(exc)
    click.echo(f"{file}: valid")


@manifest.command("apply")
@project_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def manifest_apply(project: str | None, file: Path) -> None:
    from s3dest.manifest_service import apply_manifest

    engine = _engine()
    try:
        apply_manifest(engine, _project_id(engine, project), file.read_bytes())
    except S3destError as exc:
        _fail(exc)
    click.echo(f"{file}: applied")


# --------------------------------------------------------------------------- messages
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


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--url", envvar="S3DEST_URL", default="http://127.0.0.1:8080", show_default=True)
@click.option("--api-key", envvar="S3DEST_API_KEY", required=True, help="or $S3DEST_API_KEY")
@click.option("--batch-size", default=500, show_default=True)
def send(file: Path, url: str, api_key: str, batch_size: int) -> None:
    """Send FILE (a message, a list, {"messages": [...]}, or JSON Lines) to a server."""
    from s3dest.client import Client

    messages = _read_messages(file)
    with Client(url, api_key) as client:
        try:
            for start in range(0, len(messages), batch_size):
                for accepted in client.send_batch(messages[start : start + batch_size]):
                    click.echo(f"{accepted['eventId']}  -> {accepted['destinationId']}")
        except S3destError as exc:
            _fail(exc)


@main.group()
def deliveries() -> None:
    """Delivery records: list, show, replay."""


@deliveries.command("list")
@project_option
@click.option("--destination", default=None)
@click.option(
    "--state",
    default=None,
    type=click.Choice(["queued", "delivering", "retrying", "held", "parked", "delivered"]),
)
@click.option("--limit", default=50, show_default=True)
def deliveries_list(
    project: str | None, destination: str | None, state: str | None, limit: int
) -> None:
    from s3dest.delivery import service as delivery
    from s3dest.delivery.service import MessageState

    engine = _engine()
    project_id = _project_id(engine, project)
    for r in delivery.list(
        engine,
        project_id=project_id,
        destination=destination,
        state=MessageState(state) if state else None,
        limit=limit,
    ):
        click.echo(
            f"{r.event_id}  {r.state:10}  {r.object_key or '-'}"
            + (f"  ({r.last_error})" if r.last_error and r.state != MessageState.DELIVERED else "")
        )


@deliveries.command("show")
@project_option
@click.argument("event_id")
def deliveries_show(project: str | None, event_id: str) -> None:
    from s3dest.delivery import service as delivery

    engine = _engine()
    try:
        record = delivery.get(engine, project_id=_project_id(engine, project), event_id=event_id)
        _print(delivery.public_record(record))
    except S3destError as exc:
        _fail(exc)


@deliveries.command("replay")
@project_option
@click.argument("event_id", required=False)
@click.option("--destination", default=None, help="replay every parked message of it")
def deliveries_replay(project: str | None, event_id: str | None, destination: str | None) -> None:
    from s3dest.delivery import service as delivery

    engine = _engine()
    project_id = _project_id(engine, project)
    try:
        if destination:
            count = delivery.replay_destination(
                engine, project_id=project_id, destination=destination
            )
            click.echo(f"replayed {count} parked message(s)")
        elif event_id:
            delivery.replay_message(engine, project_id=project_id, event_id=event_id)
            click.echo(f"replayed {event_id}")
        else:
            raise click.UsageError("give an EVENT_ID or --destination")
    except S3destError as exc:
        _fail(exc)


# --------------------------------------------------------------------------- secrets
@main.group()
def secrets() -> None:
    """Encryption keys of stored credentials."""


@secrets.command("rotate")
@click.option(
    "--new-key",
    is_flag=True,
    help="add a new key to the key file first (when keys come from the file)",
)
def secrets_rotate(new_key: bool) -> None:
    """Re-encrypt every stored secret under the newest key."""
    from s3dest.bootstrap import open_box
    from s3dest.destinations import service
    from s3dest.destinations.secrets import add_key_to_file

    settings = _settings()
    if new_key:
        if settings.secret_key:
            raise click.UsageError(
                "keys come from S3DEST_SECRET_KEY: put a new key first in that list instead"
            )
        click.echo(f"added key {add_key_to_file(settings.data_dir)}")
    box = open_box(settings)
    changed = service.rotate_secrets(_engine(), box)
    click.echo(f"re-encrypted {changed} destination(s) under key {box.primary_key_id}")


# --------------------------------------------------------------------------- trying things
def _load_message_file(path: Path) -> Any:
    from s3dest.messages import parse_data

    try:
        raw = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise click.UsageError(f"{path}: not JSON ({exc})") from None
    return raw, parse_data(raw)


@main.command("render-key")
@click.option("--template", "template", default=None, help="JMESPath key template")
@click.argument("message_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def render_key(template: str | None, message_file: Path) -> None:
    """Print the key TEMPLATE gives MESSAGE_FILE ({"data": {...}}), and the warnings."""
    from s3dest.keys import preview_key

    try:
        raw, data = _load_message_file(message_file)
        result = preview_key(template, raw, project_id=data.projectId or "")
    except S3destError as exc:
        _fail(exc)
        return
    click.echo(result["key"])
    for warning in result["warnings"]:
        click.echo(f"warning: {warning}", err=True)


@main.command()
@click.argument("message_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--bucket", required=True)
@click.option("--region", required=True)
@click.option("--key-template", default=None)
@click.option("--storage-class", default=None)
@click.option("--endpoint-url", default=None, envvar="AWS_ENDPOINT_URL")
@click.option("--create-only", is_flag=True, help="never overwrite (If-None-Match: *)")
def put(
    message_file: Path,
    bucket: str,
    region: str,
    key_template: str | None,
    storage_class: str | None,
    endpoint_url: str | None,
    create_only: bool,
) -> None:
    """Write one message ({"data": {...}}) to a bucket with the AWS_* credentials."""
    from s3dest.ingest.put import put_message_file

    try:
        result = put_message_file(
            message_file,
            bucket=bucket,
            region=region,
            key_template=key_template,
            storage_class=storage_class,
            endpoint_url=endpoint_url,
            create_only=create_only,
        )
    except DeliveryError as exc:
        # the diagnosis is the part a person can act on (the policy to attach, the region)
        click.echo(f"error: {exc.message}", err=True)
        if exc.diagnosis != exc.message:
            click.echo(exc.diagnosis, err=True)
        sys.exit(1)
    except S3destError as exc:
        _fail(exc)
        return
    click.echo(f"bucket: {result.bucket}")
    click.echo(f"key:    {result.key}")
    click.echo(f"etag:   {result.etag}")


@main.command()
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--no-wait", is_flag=True, help="exit after printing what landed")
def demo(port: int, no_wait: bool) -> None:
    """Start a local S3 server and s3dest, feed sample data, show what lands."""
    from s3dest.demo import run_demo

    run_demo(port=port, wait=not no_wait)


if __name__ == "__main__":  # pragma: no cover
    main()
