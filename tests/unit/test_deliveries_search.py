"""Deliveries at scale (issue 15, item 6) on SQLite and PostgreSQL, at the service: keyset
pages stable under inserts, every filter, the limit's bound, scoped counts, export, and
re-delivery that never reaches another project; and the idempotency keys' store (item 11).
"""

from __future__ import annotations

import csv
import io
import time
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, insert, select

from s3dest.access.audit import CLI
from s3dest.delivery import search
from s3dest.errors import Conflict, InvalidInput, NotFound
from s3dest.messages import new_stamp
from s3dest.settings import Settings
from s3dest.store import idempotency, queue
from s3dest.store.audit import list_entries
from s3dest.store.engine import make_engine, transaction, upgrade
from s3dest.store.tables import attempts, destinations, messages, projects

# Ids of the current test's two projects and three destinations (fresh for each test:
# one migrated database per module and database kind keeps the file fast).
P, OTHER = "p-1", "p-2"
D1, D2, D_OTHER = "d-1", "d-2", "d-3"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def migrated(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    url = None if request.param == "sqlite" else request.getfixturevalue("pg_module_database_url")
    data = tmp_path_factory.mktemp("deliveries") / "data"
    engine = make_engine(Settings(data_dir=data, database_url=url))
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(migrated: Engine) -> Engine:
    global P, OTHER, D1, D2, D_OTHER
    tag = uuid.uuid4().hex[:8]
    P, OTHER = f"p-{tag}-1", f"p-{tag}-2"
    D1, D2, D_OTHER = f"d-{tag}-1", f"d-{tag}-2", f"d-{tag}-3"
    now = time.time()
    with transaction(migrated) as conn:
        conn.execute(
            insert(projects),
            [{"id": p, "name": p, "created_at": now} for p in (P, OTHER)],
        )
        conn.execute(
            insert(destinations),
            [
                {
                    "id": did,
                    "project_id": pid,
                    "name": f"name-{n}",
                    "bucket": "b",
                    "region": "us-east-1",
                    "access_key_id": "AKIA",
                    "secret_access_key_enc": "x",
                    "storage_class": "STANDARD",
                    "write_mode": "overwrite",
                    "enabled": True,
                    "probe_attempts": 0,
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                }
                for n, (did, pid) in enumerate(((D1, P), (D2, P), (D_OTHER, OTHER)), 1)
            ],
        )
    return migrated


def _rows(
    engine: Engine,
    count: int,
    *,
    project: str | None = None,
    destination: str | None = None,
    **extra: Any,
) -> list[str]:
    """`count` delivered-looking rows stamped now, as ingest stamps them; their ids (of the
    test's first project and destination unless told)."""
    project, destination = project or P, destination or D1
    out = []
    for n in range(count):
        stamp = new_stamp()
        now = time.time()
        out.append(
            {
                "event_id": stamp.event_id,
                "project_id": project,
                "destination_id": destination,
                "state": "delivered",
                "event_time_ns": stamp.event_time_ns,
                "accepted_at": now,
                "object_name": "contacts",
                "installation_id": f"inst-{n % 3}",
                "body": b'{"data":{"n":%d}}' % n,
                "body_size": 12,
                "attempts": 1,
                "next_attempt_at": now,
                "object_key": f"k/{n:03d}/{stamp.event_id}.json",
                "updated_at": now,
                **extra,
            }
        )
    with transaction(engine) as conn:
        queue.enqueue(conn, out)
    return [r["event_id"] for r in out]


def _all_pages(
    engine: Engine, f: queue.DeliveryFilter, limit: int, between: Any = None
) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        page = search.search(engine, f, cursor=cursor, limit=limit)
        seen += [r.event_id for r in page.records]
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor
        if between is not None:
            between()


def test_pages_are_a_keyset_stable_under_inserts(engine: Engine) -> None:
    first = _rows(engine, 23)
    f = search.make_filter(engine, project_id=P)
    later: list[str] = []
    # Messages keep arriving while a client pages: none of them lands inside the pages it
    # has still to read, and nothing is seen twice or skipped (OFFSET would shift).
    seen = _all_pages(engine, f, 5, between=lambda: later.extend(_rows(engine, 2)))
    assert seen == sorted(first, reverse=True)
    assert len(later) == 8
    assert search.search(engine, f, limit=2).records[0].event_id == later[-1]  # newest first


def test_every_filter_narrows_the_search(engine: Engine) -> None:
    ids = _rows(engine, 9)
    mid = time.time()
    other_dest = _rows(engine, 2, destination=D2, object_name="deals")
    _rows(engine, 3, project=OTHER, destination=D_OTHER)
    parked = _rows(engine, 1, state="parked", object_key=None)

    def found(**terms: Any) -> set[str]:
        f = search.make_filter(engine, project_id=P, **terms)
        return set(_all_pages(engine, f, 1000))

    assert found() == set(ids + other_dest + parked)  # never the other project's
    assert found(destination="name-2") == set(other_dest)
    assert found(destination=D2) == set(other_dest)
    assert found(event_id=ids[4]) == {ids[4]}
    assert found(installation_id="inst-1") == {ids[1], ids[4], ids[7], other_dest[1]}
    assert found(object_name="deals") == set(other_dest)
    assert found(key_prefix="k/003/") == {ids[3]}
    assert found(state=queue.MessageState.PARKED) == set(parked)
    assert found(since=str(mid)) == set(other_dest + parked)
    assert found(until=str(mid)) == set(ids)
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(mid - 3600)) + "Z"
    assert found(since=since, until=str(mid)) == set(ids)
    with pytest.raises(NotFound):
        found(destination=D_OTHER)  # another project's destination does not exist here


@pytest.mark.parametrize(
    ("terms", "field", "says"),
    [
        ({"since": "yesterday"}, "since", "RFC 3339"),
        ({"until": "2026-12-01T10:00:00"}, "until", "offset"),
        ({"since": "2026-12-01T10:00:00Z", "until": "2026-12-01T09:00:00Z"}, "until", "later"),
    ],
)
def test_bad_times_are_refused_naming_the_parameter(
    engine: Engine, terms: dict[str, str], field: str, says: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        search.make_filter(engine, project_id=P, **terms)
    assert says in refused.value.fields[field]


def test_limit_and_cursor_are_checked(engine: Engine) -> None:
    f = search.make_filter(engine, project_id=P)
    with pytest.raises(InvalidInput) as too_many:
        search.search(engine, f, limit=1001)
    assert too_many.value.fields == {"limit": "must be an integer from 1 to 1000"}
    for bad in ("nope", "eyJ2IjoxfQ", search.encode_cursor("x' OR 1=1")):
        with pytest.raises(InvalidInput) as refused:
            search.search(engine, f, cursor=bad)
        assert "nextCursor" in refused.value.fields["cursor"]


def test_counts_are_scoped_to_the_filter(engine: Engine) -> None:
    _rows(engine, 3)
    _rows(engine, 2, destination=D2)
    _rows(engine, 1, destination=D2, state="parked")
    _rows(engine, 4, project=OTHER, destination=D_OTHER)
    f = search.make_filter(engine, project_id=P, destination=D2)
    assert search.counts(engine, f) == {D2: {"delivered": 2, "parked": 1}}
    every = search.counts(engine, search.make_filter(engine, project_id=P))
    assert every == {D1: {"delivered": 3}, D2: {"delivered": 2, "parked": 1}}


def test_export_streams_every_match_as_jsonl_and_csv(engine: Engine, monkeypatch: Any) -> None:
    monkeypatch.setattr(search, "EXPORT_PAGE", 4)  # several pages from a few rows
    ids = _rows(engine, 10, last_error='=HYPERLINK("http://x")')
    _rows(engine, 3, project=OTHER, destination=D_OTHER)
    f = search.make_filter(engine, project_id=P)
    lines = b"".join(search.export(engine, f, "jsonl")).splitlines()
    assert [orjson.loads(line)["eventId"] for line in lines] == sorted(ids, reverse=True)
    table = list(csv.DictReader(io.StringIO(b"".join(search.export(engine, f, "csv")).decode())))
    assert tuple(table[0]) == search.EXPORT_COLUMNS
    assert [row["eventId"] for row in table] == sorted(ids, reverse=True)
    assert table[0]["installationId"].startswith("inst-")
    assert table[0]["lastError"].startswith("'=")  # never a formula in a spreadsheet
    with pytest.raises(InvalidInput) as refused:
        search.export(engine, f, "xml")
    assert "jsonl" in refused.value.fields["format"]


def test_finish_keeps_an_inline_body_for_redelivery(engine: Engine) -> None:
    """Before issue 15 the body was dropped once delivered: nothing could be sent again."""
    (event_id,) = _rows(engine, 1, state="queued", object_key=None)
    (claimed,) = [c for c in queue.claim(engine, "w", 1000, 60) if c.event_id == event_id]
    now = time.time()
    queue.finish(engine, "w", "w", [queue.Outcome(event_id, "delivered", now, now, key="k")])
    with transaction(engine) as conn:
        body = conn.execute(select(messages.c.body).where(messages.c.event_id == event_id))
        assert body.scalar_one() == claimed.body


def test_redelivery_queues_delivered_messages_of_the_project_only(engine: Engine) -> None:
    delivered = _rows(engine, 3)
    (large,) = _rows(engine, 1, body=None, chunked=True)  # a chunked body goes once delivered
    (parked,) = _rows(engine, 1, state="parked")
    (foreign,) = _rows(engine, 1, project=OTHER, destination=D_OTHER)
    done = search.redeliver_selection(
        engine,
        project_id=P,
        actor=CLI,
        event_ids=[delivered[0], large, parked, foreign, "nope"],
    )
    assert done.queued == [delivered[0]]
    assert done.not_retained == [large] and done.not_delivered == [parked]
    assert done.not_found == [foreign, "nope"]  # another project's message does not exist
    assert queue.get_record(engine, OTHER, foreign).state == "delivered"
    assert queue.get_record(engine, P, delivered[0]).state == "queued"
    (entry,) = list_entries(engine, P, 10)
    assert entry.action == "deliveries.redelivered"
    assert entry.changes["eventIds"] == [delivered[0]]

    with pytest.raises(Conflict, match="no longer kept"):
        search.redeliver_message(engine, project_id=P, event_id=large, actor=CLI)
    with pytest.raises(Conflict, match="parked, not delivered"):
        search.redeliver_message(engine, project_id=P, event_id=parked, actor=CLI)
    with pytest.raises(NotFound):
        search.redeliver_message(engine, project_id=OTHER, event_id=delivered[1], actor=CLI)

    # A time range: the delivered messages in it, of this project.
    f = search.make_filter(engine, project_id=P, since=str(time.time() - 60))
    ranged = search.redeliver_selection(engine, project_id=P, actor=CLI, f=f)
    assert set(ranged.queued) == {delivered[1], delivered[2]}
    assert ranged.not_retained == [large]
    with pytest.raises(InvalidInput) as unbounded:
        search.redeliver_selection(
            engine, project_id=P, actor=CLI, f=search.make_filter(engine, project_id=P)
        )
    assert "since" in unbounded.value.fields


def test_idempotency_keys_are_claimed_once_per_project(engine: Engine) -> None:
    now = time.time()
    claim = idempotency.claim
    args: dict[str, Any] = {"now": now, "window": 3600, "abandon_after": 600}
    mine = claim(engine, P, "k", "sha-a", **args)
    assert mine.first
    pending = claim(engine, P, "k", "sha-a", **args)
    assert not pending.first and pending.response is None  # still being stored
    assert claim(engine, OTHER, "k", "sha-b", **args).first  # keys are per project
    with transaction(engine) as conn:  # (with the messages, in the ingest's transaction)
        idempotency.save_answer(
            conn, idempotency.KeyClaim(P, "k", mine.created_at), b'{"accepted":[]}'
        )
    again = claim(engine, P, "k", "sha-a", **args)
    assert (again.first, again.request_sha256, again.response) == (
        False,
        "sha-a",
        b'{"accepted":[]}',
    )
    # Past the window the key is forgotten; a claim abandoned by a dead process is taken.
    assert claim(engine, P, "k", "sha-c", **{**args, "now": now + 7200}).first
    taken = claim(engine, OTHER, "k", "sha-b", **{**args, "now": now + 900})
    assert taken.first
    idempotency.release(engine, idempotency.KeyClaim(OTHER, "k", taken.created_at))
    assert claim(engine, OTHER, "k", "sha-d", **{**args, "now": now + 900}).first


def test_latency_percentiles_stay_within_the_latencies_seen(engine: Engine) -> None:
    """Was: p50 and p99 interpolated across the whole bucket, so one message delivered
    11.5 s after acceptance showed as p50 20 s and p99 29.8 s (the 10-30 s bucket): the
    chart said 29.7 s beside a table whose slowest delivery took 11.5 s."""
    from s3dest.dashboard import charts

    now = time.time()
    r = charts.RANGES["hour"]
    _rows(engine, 1, accepted_at=now - 11.5, delivered_at=now, updated_at=now)
    seen = queue.activity(engine, P, since=charts.window(r, now), step=r.step, intervals=60)
    assert seen.p50[-1] == pytest.approx(11.5, abs=0.01)
    assert seen.p99[-1] == pytest.approx(11.5, abs=0.01)
    # Two in one bucket: the quantiles lie between them, never beyond the slowest.
    _rows(engine, 1, accepted_at=now - 14.0, delivered_at=now, updated_at=now)
    seen = queue.activity(engine, P, since=charts.window(r, now), step=r.step, intervals=60)
    p50, p99 = seen.p50[-1], seen.p99[-1]
    assert p50 is not None and p99 is not None and 11.5 <= p50 <= p99 <= 14.0 + 0.01


def test_activity_counts_deliveries_latency_and_failed_attempts(engine: Engine) -> None:
    """Issue 15 item 9: the charts' figures, aggregated in SQL per interval."""
    from s3dest.dashboard import charts

    now = time.time()
    r = charts.RANGES["hour"]
    since = charts.window(r, now)
    # Three delivered a second after acceptance, one a minute after, in the last interval;
    # one two intervals earlier; another project's and an old one left out.
    for latency in (1.0, 1.0, 1.0, 60.0):
        _rows(engine, 1, accepted_at=now - latency, delivered_at=now, updated_at=now)
    _rows(engine, 1, accepted_at=now - 130.5, delivered_at=now - 130, updated_at=now - 130)
    _rows(engine, 1, project=OTHER, destination=D_OTHER, delivered_at=now, updated_at=now)
    _rows(engine, 1, delivered_at=now - 7200, updated_at=now - 7200)
    (failing,) = _rows(engine, 1, destination=D2, state="retrying", updated_at=now)
    with transaction(engine) as conn:
        conn.execute(
            insert(attempts),
            [
                {
                    "event_id": failing,
                    "worker": "w",
                    "started_at": now - 1,
                    "finished_at": now - 1,
                    "outcome": outcome,
                    "error": "SlowDown",
                }
                for outcome in ("retrying", "retrying", "delivered")
            ],
        )
    seen = queue.activity(engine, P, since=since, step=r.step, intervals=r.intervals)
    assert len(seen.delivered) == 60 and sum(seen.delivered) == 5
    earlier = int((now - 130 - since) // r.step)  # 2 or 3 intervals back, by the clock
    assert seen.delivered[-1] == 4 and seen.delivered[earlier] == 1
    p50, p99 = seen.p50[-1], seen.p99[-1]
    assert p50 is not None and 0.5 < p50 <= 1.0  # in the (0.5, 1] s bucket
    assert p99 is not None and 30 < p99 <= 60
    assert seen.p50[0] is None
    assert seen.errors == {D2: [0] * 59 + [2]}
    only_d2 = queue.activity(
        engine, P, since=since, step=r.step, intervals=r.intervals, destination_id=D2
    )
    assert sum(only_d2.delivered) == 0 and only_d2.errors == seen.errors

    svg = str(charts.delivered_chart(seen, r))
    assert svg.count("<rect") == 2 and 'data-count="4"' in svg
    assert "5 in all, at most 4" in svg
    latency = str(charts.latency_chart(seen, r))
    assert 'data-series="p50"' in latency and 'data-series="p99"' in latency
    errors, legend = charts.errors_chart(seen, r, {D2: "<archive>"})
    assert legend == [("<archive>", charts.PALETTE[2], 2)]
    assert "&lt;archive&gt;" in str(errors) and "<archive>" not in str(errors)
