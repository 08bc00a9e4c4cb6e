"""Ingest: validate, route, normalise, stamp, and make durable — before saying yes.

A batch is all-or-nothing: every message is checked first and the errors of all of them
are returned together (`MessageInvalid.fields`, keyed ``messages[i].field``); only a batch
without errors is written, in one transaction, and only after that commit does the
caller answer 202.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

from sqlalchemy import Engine

from s3dest import metrics
from s3dest.errors import InvalidInput, MessageInvalid
from s3dest.ingest import bodies
from s3dest.ingest.envelope import load_project_view, summary
from s3dest.ingest.large import prepare_large
from s3dest.ingest.normalise import Prepared, prepare
from s3dest.store import ingest as store


@dataclass(frozen=True, slots=True)
class Accepted:
    event_id: str
    destination_id: str


class Ingestor:
    """Accepts messages for a project; `on_accept` wakes local workers."""

    def __init__(
        self,
        engine: Engine,
        *,
        on_accept: Callable[[], None] | None = None,
    ) -> None:
        self.engine = engine
        self.on_accept = on_accept
        bodies.limit_malloc_arenas()  # large bodies in bounded memory, see there

    def ingest(self, project_id: str, items: Sequence[Any], *, batch: bool) -> list[Accepted]:
        if not items:
            raise InvalidInput("no messages", {"messages": "send at least one message"})
        view = load_project_view(self.engine, project_id)
        prepared: list[Prepared] = []
        errors: dict[str, str] = {}
        for i, raw in enumerate(items):
            try:
                prepared.append(
                    prepare(project_id, raw, view, prefix=f"messages[{i}]" if batch else "")
                )
            except MessageInvalid as exc:
                errors.update(exc.fields)
        if errors:
            raise MessageInvalid(summary(errors), errors)
        store.enqueue(self.engine, [p.row for p in prepared])
        per_destination = Counter(p.destination_id for p in prepared)
        for destination_id, count in per_destination.items():
            metrics.accepted.labels(destination_id).inc(count)
        if self.on_accept is not None:
            self.on_accept()
        return [
            Accepted(event_id=p.row["event_id"], destination_id=p.destination_id) for p in prepared
        ]

    def ingest_large(
        self, project_id: str, source: IO[bytes], *, spool_dir: str | None = None
    ) -> Accepted:
        """One message streamed from a file (a spooled request body), in bounded memory.

        The message is checked and compacted first (nothing is written if it is invalid);
        then its body goes into ``message_chunks`` and its row into ``messages`` in one
        transaction, so it is durable, whole, before the caller answers 202.
        """
        view = load_project_view(self.engine, project_id)
        prepared = prepare_large(project_id, source, view, spool_dir=spool_dir)
        try:
            store.enqueue_chunked(self.engine, prepared.row, _read_chunks(prepared.body))
        finally:
            prepared.body.close()
        metrics.accepted.labels(prepared.destination_id).inc()
        if self.on_accept is not None:
            self.on_accept()
        return Accepted(event_id=prepared.row["event_id"], destination_id=prepared.destination_id)


def _read_chunks(source: IO[bytes]) -> Iterator[bytes]:
    while chunk := source.read(bodies.CHUNK):
        yield chunk
