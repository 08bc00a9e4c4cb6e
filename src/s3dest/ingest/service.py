"""Ingest: validate, route, normalise, stamp, and make durable — before saying yes.

A batch is all-or-nothing: every message is checked first and the errors of all of them
are returned together (`MessageInvalid.fields`, keyed ``messages[i].field``; the first
thousand); only a batch without errors is written, all or none (one transaction, or on
SQLite for a big batch one short transaction after another: `s3dest.store.staging`), and
only after its commit does the caller answer 202. A batch may arrive as a stream
(`s3dest.ingest.stream`): its messages are checked one at a time and its rows spilled to
disk until the commit, so memory does not grow with the number of messages.
"""

from __future__ import annotations

import pickle
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from sqlalchemy import Engine

from s3dest import metrics
from s3dest.errors import InvalidInput, MessageInvalid
from s3dest.ingest import bodies
from s3dest.ingest.envelope import load_project_view, summary
from s3dest.ingest.large import prepare_large
from s3dest.ingest.normalise import prepare
from s3dest.store import ingest as store
from s3dest.store.idempotency import KeyClaim, save_answer
from s3dest.store.staging import OnCommit

# Rows of a batch are kept in memory up to this many body bytes (or rows); beyond that
# they are spilled, pickled, to a temporary file until the whole batch has been checked,
# and then inserted chunk by chunk in the one transaction. A row costs ~600 bytes of
# Python objects besides its body: held whole, a 30 MB batch of 200,000 small messages
# took 1.4 GB.
_CHUNK_BYTES = 1024 * 1024
_CHUNK_ROWS = 2_000
# At most this many problems are reported for a batch (each message may have several).
_MAX_ERRORS = 1_000


class Accepted:
    """The accepted messages of one request, as the JSON of the 202's body: built as they
    are checked (~95 bytes each), rather than as an object per message. With a `sink`
    (an ingest worker process, `s3dest.ingest.processes`) the JSON goes to that file as it
    grows, and only the counts travel back: for tiny messages the answer is ~80% of the
    request's size, and each copy of it between the processes counted. With `whole` the
    JSON stays in memory until `finish` (an idempotency key keeps it, see `answer`)."""

    def __init__(self, sink: IO[bytes] | None = None, *, whole: bool = False) -> None:
        self.count = 0
        self.per_destination: Counter[str] = Counter()
        self._json = bytearray(b'{"accepted":[')
        self._sink = sink
        self._whole = whole
        #: in the serving process: the file the worker wrote the JSON to (see `finish`)
        self.body_file: IO[bytes] | None = None

    def add(self, event_id: str, destination_id: str) -> None:
        # Both are ids s3dest made (UUIDs): nothing to escape.
        if self.count:
            self._json += b","
        self._json += b'{"eventId":"%s","destinationId":"%s"}' % (
            event_id.encode(),
            destination_id.encode(),
        )
        self.count += 1
        self.per_destination[destination_id] += 1
        if self._sink is not None and not self._whole and len(self._json) >= _SINK_BYTES:
            self._sink.write(self._json)
            self._json.clear()

    def finish(self) -> None:
        """With a sink: write the rest of the JSON to it (the request was stored)."""
        assert self._sink is not None
        self._sink.write(self._json + b"]}")
        self._sink.flush()
        self._json.clear()

    def answer(self) -> bytes:
        """The whole 202 body as it will be sent (made with `whole`), for an idempotency
        key to keep; the JSON is still sent by `finish` or `response_body`."""
        assert self._whole, "the JSON may be partly in the sink"
        return bytes(self._json) + b"]}"

    def response_body(self) -> bytes:
        """``{"accepted": [{eventId, destinationId}, ...]}``, compact, in message order."""
        assert self._sink is None and self.body_file is None, "the JSON is in a file"
        self._json += b"]}"
        return bytes(self._json)

    def __getstate__(self) -> dict[str, Any]:
        # What a worker process hands back: the counts (the JSON is in the sink's file).
        return {"count": self.count, "per_destination": self.per_destination}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]
        self.count = state["count"]
        self.per_destination = state["per_destination"]


_SINK_BYTES = 64 * 1024


class Ingestor:
    """Accepts messages for a project; `on_accept` wakes local workers. In an ingest
    worker process (`s3dest.ingest.processes`) `announce` is False: the serving process
    counts the metrics and wakes its workers with the answer."""

    def __init__(
        self,
        engine: Engine,
        *,
        on_accept: Callable[[], None] | None = None,
        announce: bool = True,
        write: Callable[[Callable[[], None]], None] | None = None,
    ) -> None:
        self.engine = engine
        self.on_accept = on_accept
        self._announce = announce
        # Runs the store's writes (an ingest worker process runs them on a thread of
        # normal priority, its checks on a lower one: s3dest.ingest.processes).
        self._write = write or _call
        bodies.limit_malloc_arenas()  # large bodies in bounded memory, see there

    def announce(self, accepted: Accepted) -> None:
        """Messages were stored: count them, and wake the local delivery workers."""
        for destination_id, count in accepted.per_destination.items():
            metrics.accepted.labels(destination_id).inc(count)
        if self.on_accept is not None:
            self.on_accept()

    def ingest(
        self,
        project_id: str,
        items: Iterable[Any],
        *,
        batch: bool,
        spool_dir: str | None = None,
        sink: IO[bytes] | None = None,
        claim: KeyClaim | None = None,
    ) -> Accepted:
        """Check every message of `items` (a list, or a stream from `s3dest.ingest.stream`),
        then store them all in one transaction, or none and report every problem. With an
        idempotency key's `claim`, the answer is saved for it in that transaction."""
        view = load_project_view(self.engine, project_id)
        errors: dict[str, str] = {}
        refused = 0  # messages with problems beyond those reported
        accepted = Accepted(sink, whole=claim is not None)
        rows: list[dict[str, Any]] = []
        held = 0  # body bytes in `rows`
        with _Spill(spool_dir) as spill:
            for i, raw in enumerate(items):
                try:
                    prepared = prepare(
                        project_id, raw, view, prefix=f"messages[{i}]" if batch else ""
                    )
                except MessageInvalid as exc:
                    if len(errors) < _MAX_ERRORS:
                        errors.update(exc.fields)
                    else:
                        refused += 1
                    continue
                if errors:
                    continue  # refused already: only its problems are still wanted
                rows.append(prepared.row)
                accepted.add(prepared.row["event_id"], prepared.destination_id)
                held += prepared.row["body_size"]
                if held >= _CHUNK_BYTES or len(rows) >= _CHUNK_ROWS:
                    spill.write(rows)
                    rows, held = [], 0
            if errors:
                if refused:
                    errors["messages"] = f"and {refused} more messages have problems"
                raise MessageInvalid(summary(errors), errors)
            if not accepted.count:
                raise InvalidInput("no messages", {"messages": "send at least one message"})
            store.enqueue_chunks(
                self.engine,
                project_id,
                spill.chunks(rows),
                count=accepted.count,
                on_commit=_keeping(claim, accepted),
            )
        if self._announce:
            self.announce(accepted)
        return accepted

    def ingest_large(
        self,
        project_id: str,
        source: IO[bytes],
        *,
        spool_dir: str | None = None,
        sink: IO[bytes] | None = None,
        claim: KeyClaim | None = None,
    ) -> Accepted:
        """One message streamed from a file (a spooled request body), in bounded memory.

        The message is checked and compacted first (nothing is written if it is invalid);
        then its body goes into ``message_chunks`` and its row into ``messages``, all or none
        (with `claim`, the key's answer in the transaction that writes the row), so it is
        durable, whole, before the caller answers 202.
        """
        view = load_project_view(self.engine, project_id)
        prepared = prepare_large(project_id, source, view, spool_dir=spool_dir)
        accepted = Accepted(sink, whole=claim is not None)
        accepted.add(prepared.row["event_id"], prepared.destination_id)
        try:
            self._write(
                lambda: store.enqueue_chunked(
                    self.engine,
                    prepared.row,
                    _read_chunks(prepared.body),
                    on_commit=_keeping(claim, accepted),
                )
            )
        finally:
            prepared.body.close()
        if self._announce:
            self.announce(accepted)
        return accepted


def _keeping(claim: KeyClaim | None, accepted: Accepted) -> OnCommit | None:
    """With an idempotency key's claim: what keeps the 202's body for it, in the
    transaction that accepts the messages (store.idempotency)."""
    if claim is None:
        return None
    answer = accepted.answer()
    return lambda conn: save_answer(conn, claim, answer)


class _Spill:
    """Checked rows of a batch waiting for its commit: in memory while the batch is small,
    else pickled to an unlinked temporary file (our own rows: nothing foreign unpickled)."""

    def __init__(self, spool_dir: str | None) -> None:
        self._dir = spool_dir
        self._file: IO[bytes] | None = None

    def __enter__(self) -> _Spill:
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._file is not None:
            self._file.close()

    def write(self, rows: list[dict[str, Any]]) -> None:
        if self._file is None:
            self._file = tempfile.TemporaryFile(dir=self._dir)  # noqa: SIM115 (closed in __exit__)
        pickle.dump(rows, self._file, protocol=pickle.HIGHEST_PROTOCOL)

    def chunks(self, last: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        """Every spilled chunk, in order, then `last` (the rows still in memory)."""
        if self._file is not None:
            self._file.flush()
            self._file.seek(0)
            while True:
                try:
                    chunk: list[dict[str, Any]] = pickle.load(self._file)
                except EOFError:
                    break
                yield chunk
        if last:
            yield last


def _call(write: Callable[[], None]) -> None:
    write()


def _read_chunks(source: IO[bytes]) -> Iterator[bytes]:
    while chunk := source.read(bodies.CHUNK):
        yield chunk
