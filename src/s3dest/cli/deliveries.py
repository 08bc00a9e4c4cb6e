"""`s3dest deliveries`: delivery records — list, show, export, replay, redeliver (locally or
remotely)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from s3dest.cli import common
from s3dest.cli.common import F
from s3dest.cli.output import Column, emit, print_json, when
from s3dest.cli.target import open_target, remote_options
from s3dest.store.queue.states import STATES as MESSAGE_STATES

if TYPE_CHECKING:
    from s3dest.delivery.service import DeliveryRecord

# The store's states, so a new one is a choice here too (batching and batched were not).
STATES = [state.value for state in MESSAGE_STATES]

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


def _filter_options(*, with_state: bool = True) -> Callable[[F], F]:
    """The filters of `GET /v1/deliveries` (and its export and re-delivery), as options."""

    def decorate(fn: F) -> F:
        options = [
            click.option("--destination", default=None, help="a destination's name or id"),
            click.option("--event-id", default=None, help="one message's event id"),
            click.option("--installation", default=None, help="an installationId"),
            click.option(
                "--object", "object_name", default=None, help="an objectName, e.g. contacts"
            ),
            click.option("--key-prefix", default=None, help="the S3 object key starts with this"),
            click.option(
                "--since", default=None, help="accepted at or after: RFC 3339 or Unix seconds"
            ),
            click.option("--until", default=None, help="accepted before: RFC 3339 or Unix seconds"),
        ]
        if with_state:
            options.insert(1, click.option("--state", default=None, type=click.Choice(STATES)))
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


@contextmanager
def _option_errors(destination: str | None) -> Iterator[None]:
    """The API's errors about its filters, naming this command's options instead."""
    from s3dest.errors import InvalidInput, NotFound

    try:
        yield
    except NotFound as exc:
        if destination is None:
            raise
        raise InvalidInput(
            exc.message,
            {"--destination": "give a destination's name or id: `s3dest destinations list`"},
        ) from None
    except InvalidInput as exc:
        # The API's field names, as this command spells them.
        options = {v: f"--{k.replace('_', '-')}" for k, v in API_NAMES.items()}
        options.update(installationId="--installation", objectName="--object")
        options.update(eventIds="EVENT_ID...")
        fields = {options.get(f, f"--{f}"): text for f, text in exc.fields.items()}
        raise InvalidInput(exc.message, fields) from None


@deliveries.command("list")
@remote_options
@_filter_options()
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
    with open_target(project, url, api_key) as target, _option_errors(filters["destination"]):
        if target.client is not None:
            page = target.client.deliveries_page(
                **{API_NAMES[k]: v for k, v in filters.items()}, cursor=cursor, limit=limit
            )
        else:
            page = _local_page(target.engine, target.project_id, filters, cursor, limit)
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


def _local_filter(engine: Any, project_id: str, filters: dict[str, str | None]) -> Any:
    from s3dest.delivery import search
    from s3dest.delivery.service import MessageState

    state = filters.get("state")
    return search.make_filter(
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


def _local_page(
    engine: Any,
    project_id: str,
    filters: dict[str, str | None],
    cursor: str | None,
    limit: int,
) -> dict[str, Any]:
    from s3dest.delivery import search

    f = _local_filter(engine, project_id, filters)
    page = search.search(engine, f, cursor=cursor, limit=limit)
    return {"deliveries": [_public(r) for r in page.records], "nextCursor": page.next_cursor}


def _public(record: DeliveryRecord) -> dict[str, Any]:
    """A record as the API's MessageRecord, so a local answer is the remote one."""
    from s3dest.delivery.service import public_record

    return public_record(record)


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
            record = _public(found)
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


@deliveries.command("export")
@remote_options
@_filter_options()
@click.option(
    "--format",
    "fmt",
    default="jsonl",
    show_default=True,
    type=click.Choice(["jsonl", "csv"]),
    help="JSON Lines (one record a line, as --json prints one) or CSV with a header row",
)
@click.option(
    "--output",
    "-o",
    default="-",
    type=click.File("wb"),
    help="write to this file instead of standard output",
)
@click.option("--json", "as_json", is_flag=True, help="JSON Lines (the default; not with csv)")
def deliveries_export(
    project: str | None,
    url: str | None,
    api_key: str | None,
    fmt: str,
    output: Any,
    as_json: bool,
    **filters: str | None,
) -> None:
    """Every record matching the filters (those of `list`), newest first, streamed as JSON
    Lines or CSV: `GET /v1/deliveries/export`, in pages, whatever the count."""
    if as_json and fmt != "jsonl":
        raise click.UsageError("--json prints JSON Lines: leave out --format csv")
    with open_target(project, url, api_key) as target, _option_errors(filters["destination"]):
        if target.client is not None:
            pieces = target.client.export_deliveries(
                fmt, **{API_NAMES[k]: v for k, v in filters.items()}
            )
        else:
            from s3dest.delivery import search

            f = _local_filter(target.engine, target.project_id, filters)
            pieces = search.export(target.engine, f, fmt)
        for piece in pieces:
            output.write(piece)
        output.flush()


#: What a re-delivery's answer lists besides the messages queued, and how a person reads it.
_LEFT_OUT = {
    "notDelivered": "not delivered (left as they are; a parked one is replayed with `replay`)",
    "notRetained": "delivered, but their body is no longer kept",
    "notFound": "no such message in this project",
}


@deliveries.command("redeliver")
@remote_options
@click.argument("event_ids", nargs=-1, metavar="[EVENT_ID]...")
@_filter_options(with_state=False)
@common.json_option
def deliveries_redeliver(
    project: str | None,
    url: str | None,
    api_key: str | None,
    event_ids: tuple[str, ...],
    as_json: bool,
    **filters: str | None,
) -> None:
    """Write delivered messages again, with the same key and body, while their body is
    kept: the EVENT_IDs given (at most 1000), or every delivered message of a time range
    (--since, and --until if not now; narrowed by the other filters)."""
    from s3dest.access.audit import CLI
    from s3dest.delivery import search

    given = {k: v for k, v in filters.items() if v is not None}
    if event_ids and given:
        raise click.UsageError("give EVENT_IDs, or a time range with filters, not both")
    if not event_ids and not given:
        raise click.UsageError("say which messages: EVENT_IDs, or --since (a time range)")
    with open_target(project, url, api_key) as target, _option_errors(filters["destination"]):
        if target.client is not None:
            body: dict[str, Any] = (
                {"eventIds": list(event_ids)}
                if event_ids
                else {API_NAMES[k]: v for k, v in given.items()}
            )
            result = target.client.redeliver_selection(**body)
        else:
            done = search.redeliver_selection(
                target.engine,
                project_id=target.project_id,
                actor=CLI,
                event_ids=list(event_ids) if event_ids else None,
                f=None if event_ids else _local_filter(target.engine, target.project_id, filters),
            )
            result = {
                "redelivered": len(done.queued),
                "eventIds": done.queued,
                "notDelivered": done.not_delivered,
                "notRetained": done.not_retained,
                "notFound": done.not_found,
            }
    if as_json:
        print_json(result)
        return
    click.echo(f"queued {result['redelivered']} message(s) to be written again")
    for name, words in _LEFT_OUT.items():
        if result[name]:
            shown = ", ".join(result[name][:5]) + (" …" if len(result[name]) > 5 else "")
            click.echo(f"{len(result[name])} {words}: {shown}", err=True)
    if not result["redelivered"]:
        sys.exit(1)
