"""`s3dest deliveries`: delivery records — list, show, replay (locally or remotely)."""

from __future__ import annotations

from typing import Any

import click

from s3dest.cli import common
from s3dest.cli.output import Column, emit, print_json, when
from s3dest.cli.target import open_target, remote_options

STATES = ["queued", "delivering", "retrying", "held", "parked", "delivered"]

COLUMNS: list[Column] = [
    ("event id", lambda r: r["eventId"]),
    ("state", lambda r: r["state"]),
    ("accepted", lambda r: when(r["acceptedAt"])),
    ("object", lambda r: r["objectName"]),
    ("key", lambda r: r["key"]),
    ("last error", lambda r: r["lastError"] if r["state"] != "delivered" else None),
]


@click.group()
def deliveries() -> None:
    """Delivery records: list, show, replay."""


@deliveries.command("list")
@remote_options
@click.option("--destination", default=None, help="a destination's name or id")
@click.option("--state", default=None, type=click.Choice(STATES))
@click.option("--event-id", default=None, help="one message's event id")
@click.option("--installation", default=None, help="an installationId")
@click.option("--object", "object_name", default=None, help="an objectName, e.g. contacts")
@click.option("--key-prefix", default=None, help="the S3 object key starts with this")
@click.option("--since", default=None, help="accepted at or after: RFC 3339 or Unix seconds")
@click.option("--until", default=None, help="accepted before: RFC 3339 or Unix seconds")
@click.option("--cursor", default=None, help="the next page: the cursor the last page printed")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@common.json_option
def deliveries_list(
    project: str | None,
    url: str | None,
    api_key: str | None,
    cursor: str | None,
    limit: int,
    as_json: bool,
    **filters: str | None,
) -> None:
    """Delivery records, newest accepted first, a page at a time (filters combine)."""
    from s3dest.errors import InvalidInput, NotFound

    with open_target(project, url, api_key) as target:
        try:
            if target.client is not None:
                page = target.client.deliveries_page(
                    **{API_NAMES[k]: v for k, v in filters.items()}, cursor=cursor, limit=limit
                )
            else:
                page = _local_page(target.engine, target.project_id, filters, cursor, limit)
        except NotFound as exc:
            if filters["destination"] is None:
                raise
            raise InvalidInput(
                exc.message,
                {"--destination": "give a destination's name or id: `s3dest destinations list`"},
            ) from None
        except InvalidInput as exc:
            # The API's field names, as this command spells them.
            options = {v: f"--{k.replace('_', '-')}" for k, v in API_NAMES.items()}
            options.update(installationId="--installation", objectName="--object")
            fields = {options.get(f, f"--{f}"): text for f, text in exc.fields.items()}
            raise InvalidInput(exc.message, fields) from None
    if as_json:
        print_json(page)
        return
    emit(page["deliveries"], COLUMNS, as_json=False, key="deliveries", empty="no deliveries match")
    if page.get("nextCursor"):
        click.echo(f"more: add --cursor {page['nextCursor']}", err=True)


#: this command's filter options → the REST API's query parameters
API_NAMES = {
    "destination": "destination",
    "state": "state",
    "event_id": "eventId",
    "installation": "installationId",
    "object_name": "objectName",
    "key_prefix": "key",
    "since": "since",
    "until": "until",
}


def _local_page(
    engine: Any,
    project_id: str,
    filters: dict[str, str | None],
    cursor: str | None,
    limit: int,
) -> dict[str, Any]:
    from s3dest.delivery import search
    from s3dest.delivery.service import MessageState, public_record

    state = filters["state"]
    f = search.make_filter(
        engine,
        project_id=project_id,
        destination=filters["destination"],
        state=MessageState(state) if state else None,
        event_id=filters["event_id"],
        installation_id=filters["installation"],
        object_name=filters["object_name"],
        key_prefix=filters["key_prefix"],
        since=filters["since"],
        until=filters["until"],
    )
    page = search.search(engine, f, cursor=cursor, limit=limit)
    return {"deliveries": [public_record(r) for r in page.records], "nextCursor": page.next_cursor}


@deliveries.command("show")
@remote_options
@click.argument("event_id")
@common.json_option
def deliveries_show(
    project: str | None, url: str | None, api_key: str | None, event_id: str, as_json: bool
) -> None:
    """One message's record and its attempts (always JSON; --json is accepted)."""
    from s3dest.delivery import service as delivery

    with open_target(project, url, api_key) as target:
        if target.client is not None:
            record = target.client.message(event_id)
        else:
            found = delivery.get(target.engine, project_id=target.project_id, event_id=event_id)
            record = delivery.public_record(found)
    print_json(record)


@deliveries.command("replay")
@remote_options
@click.argument("event_id", required=False)
@click.option("--destination", default=None, help="replay every parked message of it")
@common.json_option
def deliveries_replay(
    project: str | None,
    url: str | None,
    api_key: str | None,
    event_id: str | None,
    destination: str | None,
    as_json: bool,
) -> None:
    """Queue a parked message (EVENT_ID) or every parked message of --destination again."""
    from s3dest.access.audit import CLI
    from s3dest.delivery import service as delivery

    if bool(event_id) == bool(destination):
        raise click.UsageError("give an EVENT_ID or --destination (one of them)")
    with open_target(project, url, api_key) as target:
        client = target.client
        if destination:
            if client is not None:
                count = client.replay_destination(destination)
            else:
                count = delivery.replay_destination(
                    target.engine, project_id=target.project_id, destination=destination, actor=CLI
                )
            if as_json:
                print_json({"replayed": count})
            else:
                click.echo(f"replayed {count} parked message(s)")
            return
        assert event_id is not None
        if client is not None:
            client.replay(event_id)
        else:
            delivery.replay_message(
                target.engine, project_id=target.project_id, event_id=event_id, actor=CLI
            )
        if as_json:
            print_json({"replayed": 1, "eventId": event_id})
        else:
            click.echo(f"replayed {event_id}")
