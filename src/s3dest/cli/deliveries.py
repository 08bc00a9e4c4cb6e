"""`s3dest deliveries`: delivery records — list, show, replay."""

from __future__ import annotations

import click

from s3dest.cli import common


@click.group()
def deliveries() -> None:
    """Delivery records: list, show, replay."""


@deliveries.command("list")
@common.project_option
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

    engine = common.engine()
    project_id = common.project_id(engine, project)
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
@common.project_option
@click.argument("event_id")
@common.reports_errors()
def deliveries_show(project: str | None, event_id: str) -> None:
    from s3dest.delivery import service as delivery

    engine = common.engine()
    record = delivery.get(engine, project_id=common.project_id(engine, project), event_id=event_id)
    common.print_json(delivery.public_record(record))


@deliveries.command("replay")
@common.project_option
@click.argument("event_id", required=False)
@click.option("--destination", default=None, help="replay every parked message of it")
@common.reports_errors()
def deliveries_replay(project: str | None, event_id: str | None, destination: str | None) -> None:
    from s3dest.access.audit import CLI
    from s3dest.delivery import service as delivery

    engine = common.engine()
    project_id = common.project_id(engine, project)
    if destination:
        count = delivery.replay_destination(
            engine, project_id=project_id, destination=destination, actor=CLI
        )
        click.echo(f"replayed {count} parked message(s)")
    elif event_id:
        delivery.replay_message(engine, project_id=project_id, event_id=event_id, actor=CLI)
        click.echo(f"replayed {event_id}")
    else:
        raise click.UsageError("give an EVENT_ID or --destination")
