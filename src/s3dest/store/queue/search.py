"""Deliveries at scale: a project's records searched and paged by keyset, and re-delivery.

Pages run newest first by event id: a UUIDv7 is stamped when the message is accepted,
never changes, and sorts in acceptance order, so `event_id < cursor` on
``ix_messages_project_event`` is an index range whatever the project's size (no OFFSET),
and messages accepted while a client pages arrive above its first page, never inside
the pages it has still to read. A time range is a range of event time (the acceptance
time, in nanoseconds) and bounds the same index: a UUIDv7's first 48 bits are its
millisecond, never earlier than the event time's.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy import ColumnElement, Engine, Select, and_, func, select, update

from s3dest.store.engine import reading, transaction
from s3dest.store.queue.batches import OUT_OF_BATCH
from s3dest.store.queue.records import _RECORD_COLUMNS, DeliveryRecord, _record
from s3dest.store.queue.states import MessageState
from s3dest.store.tables import messages


@dataclass(frozen=True, slots=True)
class DeliveryFilter:
    """What a search keeps: every field set must match (None: any)."""

    project_id: str
    destination_id: str | None = None
    state: MessageState | None = None
    event_id: str | None = None
    installation_id: str | None = None
    object_name: str | None = None
    key_prefix: str | None = None  # the S3 object key starts with it
    since_ns: int | None = None  # event time ≥ (inclusive)
    until_ns: int | None = None  # event time < (exclusive)


def uuid7_floor(unix_ms: int) -> str:
    """The smallest UUIDv7 text of that millisecond (for `event_id >=` bounds)."""
    h = f"{max(0, unix_ms) & ((1 << 48) - 1):012x}"
    return f"{h[:8]}-{h[8:12]}-7000-8000-000000000000"


# A UUIDv7's millisecond is its event time's, or later when more than 4,096 ids were
# stamped in one millisecond by one process (it borrows the next): an upper bound on the
# id leaves this much room, and the event time itself is compared exactly.
_BORROW_MS = 1_000


def _conditions(f: DeliveryFilter) -> list[ColumnElement[bool]]:
    c = messages.c
    where: list[ColumnElement[bool]] = [c.project_id == f.project_id]
    if f.destination_id is not None:
        where.append(c.destination_id == f.destination_id)
    if f.state is not None:
        where.append(c.state == f.state.value)
    if f.event_id is not None:
        where.append(c.event_id == f.event_id)
    if f.installation_id is not None:
        where.append(c.installation_id == f.installation_id)
    if f.object_name is not None:
        where.append(c.object_name == f.object_name)
    if f.key_prefix is not None:
        # Compared as a range, not LIKE: no escaping of % and _, and the same on both
        # databases (a key holds any character).
        where.append(and_(c.object_key >= f.key_prefix, c.object_key < f.key_prefix + "\U0010ffff"))
    if f.since_ns is not None:
        where.append(c.event_time_ns >= f.since_ns)
        where.append(c.event_id >= uuid7_floor(f.since_ns // 1_000_000))
    if f.until_ns is not None:
        where.append(c.event_time_ns < f.until_ns)
        where.append(c.event_id < uuid7_floor(-(-f.until_ns // 1_000_000) + _BORROW_MS))
    return where


def _page(f: DeliveryFilter, after: str | None, limit: int) -> Select[tuple[object, ...]]:
    where = _conditions(f)
    if after is not None:
        where.append(messages.c.event_id < after)
    return (
        select(*_RECORD_COLUMNS)
        .where(*where)
        .order_by(messages.c.project_id.desc(), messages.c.event_id.desc())
        .limit(limit)
    )


def search_records(
    engine: Engine, f: DeliveryFilter, *, after: str | None = None, limit: int = 100
) -> list[DeliveryRecord]:
    """Up to `limit` records matching `f`, newest first, after the event id `after` (the
    last of the previous page)."""
    with reading(engine) as conn:
        return [_record(r._mapping) for r in conn.execute(_page(f, after, limit))]


def count_by_state(engine: Engine, f: DeliveryFilter) -> dict[str, dict[str, int]]:
    """destination id → state → how many records match `f` (its state left out)."""
    where = _conditions(replace(f, state=None))
    stmt = (
        select(messages.c.destination_id, messages.c.state, func.count())
        .where(*where)
        .group_by(messages.c.destination_id, messages.c.state)
    )
    out: dict[str, dict[str, int]] = {}
    with reading(engine) as conn:
        for destination_id, state, count in conn.execute(stmt):
            out.setdefault(destination_id, {})[state] = int(count)
    return out


@dataclass(frozen=True, slots=True)
class Redelivery:
    """What a re-delivery did: the messages queued again, and those it could not."""

    queued: list[str]
    not_delivered: list[str]  # not in state delivered (queued, parked…: not re-sent)
    not_retained: list[str]  # delivered, but the body is no longer kept
    not_found: list[str]  # no such message in the project
    too_many: bool = False  # a filter matched more than the limit: nothing was done


def redeliver(
    engine: Engine,
    project_id: str,
    *,
    event_ids: Sequence[str] | None = None,
    f: DeliveryFilter | None = None,
    limit: int = 10_000,
) -> Redelivery:
    """Queue delivered messages again, whose inline body is still kept: the same event id
    and event time, so the worker writes the same key and body again as a new attempt (a
    message delivered in a batch is written alone, under its own key).

    Either `event_ids` (each reported) or a filter `f` (of the project; at most `limit`
    messages, newest first). Only the project's messages are read or changed."""
    now = time.time()
    c = messages.c
    queued: list[str] = []
    not_delivered: list[str] = []
    not_retained: list[str] = []
    with transaction(engine) as conn:
        if event_ids is not None:
            wanted = list(dict.fromkeys(event_ids))
            stmt = select(c.event_id, c.state, c.body.is_not(None)).where(
                c.project_id == project_id, c.event_id.in_(wanted)
            )
        else:
            assert f is not None and f.project_id == project_id
            wanted = []
            stmt = (
                select(c.event_id, c.state, c.body.is_not(None))
                .where(*_conditions(f), c.state == MessageState.DELIVERED.value)
                .order_by(c.project_id.desc(), c.event_id.desc())
                .limit(limit + 1)
            )
        found: dict[str, tuple[str, bool]] = {
            row[0]: (row[1], bool(row[2])) for row in conn.execute(stmt)
        }
        if event_ids is None and len(found) > limit:
            return Redelivery([], [], [], [], too_many=True)
        for event_id, (state, has_body) in found.items():
            if state != MessageState.DELIVERED:
                not_delivered.append(event_id)
            elif not has_body:
                not_retained.append(event_id)
            else:
                queued.append(event_id)
        for start in range(0, len(queued), 500):
            conn.execute(
                update(messages)
                .where(
                    c.project_id == project_id,
                    c.event_id.in_(queued[start : start + 500]),
                    c.state == MessageState.DELIVERED.value,
                )
                .values(
                    state=MessageState.QUEUED.value,
                    next_attempt_at=now,
                    updated_at=now,
                    **OUT_OF_BATCH,  # written again as an object of its own (SPEC §9)
                )
            )
    order = {e: i for i, e in enumerate(wanted)} if wanted else None

    def ordered(ids: list[str]) -> list[str]:
        return sorted(ids, key=order.__getitem__) if order else sorted(ids, reverse=True)

    return Redelivery(
        queued=ordered(queued),
        not_delivered=ordered(not_delivered),
        not_retained=ordered(not_retained),
        not_found=[e for e in wanted if e not in found],
    )
