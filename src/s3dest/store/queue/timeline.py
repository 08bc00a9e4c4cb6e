"""A project's delivery activity over time, for the dashboard's charts: messages delivered
per interval, the accept→delivered latency's p50/p99, and failed attempts per destination.

Everything is aggregated in SQL, so a busy hour costs a few hundred result rows, not a
row per message: latencies are counted into the fixed buckets of `LATENCY_BOUNDS` (as a
Prometheus histogram is), with each bucket's fastest and slowest, and the percentiles are
read from those. Queries start
from `ix_messages_project_updated`: a delivery (and every attempt) writes `updated_at`,
so a message delivered or tried since `since` was updated since then too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    Integer,
    and_,
    case,
    cast,
    func,
    literal_column,
    select,
)

from s3dest.store.engine import reading
from s3dest.store.queue.states import MessageState
from s3dest.store.tables import attempts, messages

# Upper bounds (seconds) of the latency buckets; the last one is open.
LATENCY_BOUNDS: tuple[float, ...] = (
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
    math.inf,
)


@dataclass(frozen=True, slots=True)
class Activity:
    """Per interval (oldest first, starting at `start`, `step` seconds each)."""

    start: float
    step: float
    delivered: list[int]
    p50: list[float | None]  # None: nothing delivered in that interval
    p99: list[float | None]
    errors: dict[str, list[int]]  # destination id → failed attempts per interval


@dataclass(slots=True)
class _Bucket:
    """The deliveries of one interval in one latency bucket: how many, and the fastest and
    slowest of them (so a percentile never lies outside what was seen)."""

    count: int = 0
    fastest: float = math.inf
    slowest: float = 0.0


def _quantile(buckets: list[_Bucket], q: float) -> float | None:
    """The q-quantile of a latency histogram, interpolated inside its bucket between the
    latencies seen there (a Prometheus histogram interpolates across the bucket's bounds: one
    11.5 s delivery read as 20 s at p50, 29.8 s at p99)."""
    total = sum(b.count for b in buckets)
    if not total:
        return None
    rank = q * total
    seen = 0
    for b in buckets:
        if b.count and seen + b.count >= rank:
            share = (rank - seen) / b.count
            return b.fastest + (b.slowest - b.fastest) * share
        seen += b.count
    return max(b.slowest for b in buckets)


def activity(
    engine: Engine,
    project_id: str,
    *,
    since: float,
    step: float,
    intervals: int,
    destination_id: str | None = None,
) -> Activity:
    m, a = messages.c, attempts.c

    def floor(value: ColumnElement[Any]) -> ColumnElement[Any]:
        # SQLite has floor() only when built with its math functions; CAST truncates,
        # which is floor for the non-negative offsets here. PostgreSQL's CAST rounds.
        if engine.dialect.name == "postgresql":
            return func.floor(value)
        return cast(value, Integer)

    # The grouped expressions hold no bound parameters, only literals (our own numbers):
    # SQLite grouped `GROUP BY slot, bucket` wrongly when the CASE had parameters (every
    # latency in one bucket), and PostgreSQL sees two differently numbered parameters as
    # two expressions when GROUP BY repeats them.
    start: ColumnElement[float] = literal_column(repr(float(since)))
    width: ColumnElement[float] = literal_column(repr(float(step)))
    slot = floor((m.delivered_at - start) / width)
    latency = m.delivered_at - m.accepted_at
    bucket = case(
        *(
            (latency <= literal_column(repr(bound)), literal_column(str(i)))
            for i, bound in enumerate(LATENCY_BOUNDS[:-1])
        ),
        else_=literal_column(str(len(LATENCY_BOUNDS) - 1)),
    )
    scope = [m.project_id == project_id, m.updated_at >= since]
    if destination_id is not None:
        scope.append(m.destination_id == destination_id)
    delivered_stmt = (
        select(
            slot.label("slot"),
            bucket.label("bucket"),
            func.count(),
            func.min(latency),
            func.max(latency),
        )
        .where(*scope, m.state == MessageState.DELIVERED.value, m.delivered_at >= since)
        .group_by(slot, bucket)
    )
    tried_slot = floor((a.finished_at - start) / width)
    errors_stmt = (
        select(m.destination_id, tried_slot.label("slot"), func.count())
        .select_from(messages.join(attempts, and_(a.event_id == m.event_id)))
        .where(*scope, a.finished_at >= since, a.outcome != MessageState.DELIVERED.value)
        .group_by(m.destination_id, tried_slot)
    )
    histograms = [[_Bucket() for _ in LATENCY_BOUNDS] for _ in range(intervals)]
    errors: dict[str, list[int]] = {}
    with reading(engine) as conn:
        for s, b, n, fastest, slowest in conn.execute(delivered_stmt):
            if 0 <= int(s) < intervals:
                histograms[int(s)][int(b)] = _Bucket(int(n), float(fastest), float(slowest))
        for destination, s, n in conn.execute(errors_stmt):
            if 0 <= int(s) < intervals:
                errors.setdefault(destination, [0] * intervals)[int(s)] += int(n)
    return Activity(
        start=since,
        step=step,
        delivered=[sum(b.count for b in h) for h in histograms],
        p50=[_quantile(h, 0.5) for h in histograms],
        p99=[_quantile(h, 0.99) for h in histograms],
        errors=errors,
    )
