"""Deliveries at scale: search with an opaque cursor, export, and re-delivery.

What the API's `/v1/deliveries…` routes, the CLI and the dashboard's deliveries page ask
for; keyword-only input, checked here once (a 422 naming the parameter and its fix), the
store's keyset queries underneath (`s3dest.store.queue.search`).
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from sqlalchemy import Engine

from s3dest.access import audit
from s3dest.access.audit import Actor
from s3dest.delivery.service import public_record
from s3dest.errors import Conflict, InvalidInput, NotFound
from s3dest.store import queue
from s3dest.store.destinations import get_destination
from s3dest.store.engine import atomic
from s3dest.store.queue import DeliveryFilter, DeliveryRecord, MessageState, Redelivery

MAX_LIMIT = 1000  # records per page
EXPORT_PAGE = 1000  # records read per query while exporting
MAX_REDELIVER = 10_000  # messages re-delivered by one request (a selection or a range)
MAX_SELECTION = 1000  # event ids in one selection

_CURSOR_VERSION = 1
_EVENT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TIME_HINT = "an RFC 3339 time such as 2026-12-01T19:00:00Z, or Unix seconds"


@dataclass(frozen=True, slots=True)
class Page:
    records: list[DeliveryRecord]
    next_cursor: str | None  # None: this was the last page


def encode_cursor(event_id: str) -> str:
    raw = orjson.dumps({"v": _CURSOR_VERSION, "after": event_id})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The event id a cursor continues after; 422 for anything this API did not give."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        after = data["after"] if data.get("v") == _CURSOR_VERSION else None
    except (ValueError, TypeError, KeyError, AttributeError, UnicodeError, binascii.Error):
        after = None
    if not isinstance(after, str) or not _EVENT_ID.fullmatch(after):
        raise InvalidInput(
            "cursor is not one this API gave",
            {"cursor": "pass nextCursor of the previous page unchanged (or leave it out)"},
        )
    return after


def parse_time(name: str, value: str | None) -> int | None:
    """An RFC 3339 time or Unix seconds as Unix nanoseconds (None when not given)."""
    if value is None or value == "":
        return None
    text = value.strip()
    try:
        if re.fullmatch(r"\d+(\.\d+)?", text):
            return int(float(text) * 1_000_000_000)
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except (ValueError, OverflowError):
        raise InvalidInput(f"{name} is not a time", {name: f"must be {_TIME_HINT}"}) from None
    if moment.tzinfo is None:
        raise InvalidInput(
            f"{name} has no time zone", {name: f"must say its offset (Z for UTC): {_TIME_HINT}"}
        )
    return int(moment.astimezone(UTC).timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def make_filter(
    engine: Engine,
    *,
    project_id: str,
    destination: str | None = None,
    state: MessageState | None = None,
    event_id: str | None = None,
    installation_id: str | None = None,
    object_name: str | None = None,
    key_prefix: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> DeliveryFilter:
    """The store's filter, from the API's terms; `destination` is an id or a name of the
    project (404 otherwise), times as `parse_time` reads them."""
    destination_id = get_destination(engine, project_id, destination).id if destination else None
    since_ns, until_ns = parse_time("since", since), parse_time("until", until)
    if since_ns is not None and until_ns is not None and since_ns >= until_ns:
        raise InvalidInput(
            "since must be before until", {"until": "must be later than since (until is excluded)"}
        )
    return DeliveryFilter(
        project_id=project_id,
        destination_id=destination_id,
        state=state,
        event_id=event_id or None,
        installation_id=installation_id or None,
        object_name=object_name or None,
        key_prefix=key_prefix or None,
        since_ns=since_ns,
        until_ns=until_ns,
    )


def search(
    engine: Engine, f: DeliveryFilter, *, cursor: str | None = None, limit: int = 100
) -> Page:
    """One page of records matching `f`, newest accepted first."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(
            f"limit must be from 1 to {MAX_LIMIT}",
            {"limit": f"must be an integer from 1 to {MAX_LIMIT}"},
        )
    after = decode_cursor(cursor) if cursor else None
    rows = queue.search_records(engine, f, after=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, encode_cursor(rows[-1].event_id) if more and rows else None)


def counts(engine: Engine, f: DeliveryFilter) -> dict[str, dict[str, int]]:
    """destination id → state → records matching `f` but for its state."""
    return queue.count_by_state(engine, f)


# -- export ------------------------------------------------------------------------------

EXPORT_COLUMNS = (
    "eventId",
    "destinationId",
    "state",
    "eventTime",
    "acceptedAt",
    "installationId",
    "objectName",
    "size",
    "attempts",
    "bucket",
    "key",
    "etag",
    "versionId",
    "lastError",
    "lastErrorKind",
    "deliveredAt",
    "updatedAt",
    # SPEC §9: the batch object's first event id and this message's line in it.
    "batchId",
    "batchLine",
)
EXPORT_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}


def export(engine: Engine, f: DeliveryFilter, fmt: str) -> Iterator[bytes]:
    """Every record matching `f`, newest first, as JSON Lines or CSV (with a header),
    read page by page by keyset: memory stays one page whatever the count."""
    if fmt not in EXPORT_TYPES:
        raise InvalidInput(
            f"format {fmt!r} is not an export format",
            {"format": "must be jsonl (JSON Lines) or csv"},
        )
    return _export_rows(engine, f, fmt)


def _export_rows(engine: Engine, f: DeliveryFilter, fmt: str) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if fmt == "csv":
        writer.writerow(EXPORT_COLUMNS)
        yield buffer.getvalue().encode()
    after: str | None = None
    while True:
        rows = queue.search_records(engine, f, after=after, limit=EXPORT_PAGE)
        if not rows:
            return
        out = bytearray()
        for record in rows:
            public = public_record(record)
            if fmt == "jsonl":
                out += orjson.dumps(public) + b"\n"
            else:
                buffer.seek(0)
                buffer.truncate()
                batch = public.get("batch") or {}
                cells = {**public, "batchId": batch.get("id"), "batchLine": batch.get("line")}
                writer.writerow(_csv_cell(cells.get(name)) for name in EXPORT_COLUMNS)
                out += buffer.getvalue().encode()
        yield bytes(out)
        if len(rows) < EXPORT_PAGE:
            return
        after = rows[-1].event_id


def _csv_cell(value: object) -> object:
    # A spreadsheet runs a cell that starts with = + - @ as a formula: an error text or key
    # a tenant's data shaped must not become one (OWASP's CSV injection advice).
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


# -- re-delivery -------------------------------------------------------------------------


def redeliver_message(engine: Engine, *, project_id: str, event_id: str, actor: Actor) -> None:
    """Deliver one delivered message again (the same key and body, a new attempt)."""
    with atomic(engine):  # the re-delivery and its audit entry commit together
        done = queue.redeliver(engine, project_id, event_ids=[event_id])
        if done.not_found:
            raise NotFound(f"no message {event_id!r} in this project")
        if done.not_delivered:
            state = queue.get_record(engine, project_id, event_id).state
            raise Conflict(
                f"message {event_id} is {state}, not delivered; only delivered messages are "
                "re-delivered (a parked one is replayed, the others are on their way)"
            )
        if done.not_retained:
            raise Conflict(_NOT_RETAINED.format(event_id))
        _audit(engine, actor, project_id, f"message:{event_id}", done, {})


_NOT_RETAINED = (
    "message {} was delivered but its body is no longer kept, so it cannot be sent again: "
    "bodies above S3DEST_INLINE_BODY_BYTES go once delivered, and every record goes after "
    "the retention period"
)


def redeliver_selection(
    engine: Engine,
    *,
    project_id: str,
    actor: Actor,
    event_ids: Sequence[str] | None = None,
    f: DeliveryFilter | None = None,
) -> Redelivery:
    """Deliver again the delivered messages among `event_ids` (at most MAX_SELECTION),
    or those matching `f` (a time range is required; at most MAX_REDELIVER)."""
    if (event_ids is None) == (f is None):
        raise InvalidInput(
            "say which messages to re-deliver",
            {"eventIds": "give eventIds, or a time range (since, and until if not now)"},
        )
    changes: dict[str, object] = {}
    with atomic(engine):  # the re-delivery and its audit entry commit together
        if event_ids is not None:
            if not 1 <= len(event_ids) <= MAX_SELECTION:
                raise InvalidInput(
                    f"eventIds must hold 1 to {MAX_SELECTION} event ids",
                    {"eventIds": f"give from 1 to {MAX_SELECTION} event ids"},
                )
            done = queue.redeliver(engine, project_id, event_ids=event_ids)
            target = "deliveries:selection"
        else:
            assert f is not None
            if f.since_ns is None:
                raise InvalidInput(
                    "a re-delivery by filter needs a time range",
                    {"since": f"give the range's start ({_TIME_HINT})"},
                )
            done = queue.redeliver(engine, project_id, f=f, limit=MAX_REDELIVER)
            if done.too_many:
                raise InvalidInput(
                    f"more than {MAX_REDELIVER} delivered messages are in that range",
                    {"since": f"narrow since/until to at most {MAX_REDELIVER} delivered messages"},
                )
            target = f"destination:{f.destination_id}" if f.destination_id else "deliveries:range"
            changes = {
                "since": _rfc3339(f.since_ns),
                "until": _rfc3339(f.until_ns) if f.until_ns is not None else None,
            }
        _audit(engine, actor, project_id, target, done, changes)
    return done


def _rfc3339(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat().replace("+00:00", "Z")


def _audit(
    engine: Engine,
    actor: Actor,
    project_id: str,
    target: str,
    done: Redelivery,
    changes: dict[str, object],
) -> None:
    if not done.queued:
        return
    audit.record(
        engine,
        actor,
        project_id=project_id,
        action="message.redelivered" if target.startswith("message:") else "deliveries.redelivered",
        target=target,
        changes={
            **changes,
            "redelivered": len(done.queued),
            # The first ones, so an entry stays small; the count says how many in all.
            "eventIds": done.queued[:20],
        },
    )
