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
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@common.json_option
def deliveries_list(
    project: str | None,
    url: str | None,
    api_key: str | None,
    destination: str | None,
    state: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """The newest delivery records, newest first."""
    from s3dest.errors import InvalidInput, NotFound

    with open_target(project, url, api_key) as target:
        try:
            if target.client is not None:
                rows = target.client.deliveries(destination=destination, state=state, limit=limit)
            else:
                rows = _local_list(target.engine, target.project_id, destination, state, limit)
        except NotFound as exc:
            if destination is None:
                raise
            raise InvalidInput(
                exc.message,
                {"--destination": "give a destination's name or id: `s3dest destinations list`"},
            ) from None
    emit(rows, COLUMNS, as_json=as_json, key="deliveries", empty="no deliveries match")


def _local_list(
    engine: Any, project_id: str, destination: str | None, state: str | None, limit: int
) -> list[dict[str, Any]]:
    from s3dest.delivery import service as delivery
    from s3dest.delivery.service import MessageState

    return [
        delivery.public_record(r)
        for r in delivery.list(
            engine,
            project_id=project_id,
            destination=destination,
            state=MessageState(state) if state else None,
            limit=limit,
        )
    ]


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
