"""The daily summary webhook event (`summary.daily`, issue 16), computed and enqueued by
`store.summaries.enqueue_daily` with an injected clock, on SQLite and PostgreSQL: the
counts of the UTC day that ended (deliveries on both sides of midnight), one delivery per
subscribed endpoint and day however many processes run it at once and however often they
restart, only the most recent completed day after an outage, nothing for endpoints that
did not subscribe, and no secret in the payload. Counting happens in read transactions:
it finishes while another connection holds SQLite's write lock."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

import orjson
import pytest
from sqlalchemy import Engine, insert, select, text, update

from s3dest.access.audit import CLI
from s3dest.api.routes.webhooks import EventType
from s3dest.destinations.secrets import SecretBox
from s3dest.errors import InvalidInput
from s3dest.notifications import service
from s3dest.notifications.summary import DailySummaries
from s3dest.settings import Settings
from s3dest.store import outbox, projects, summaries
from s3dest.store.destinations import DestinationFields, insert_destination
from s3dest.store.engine import make_engine, transaction, upgrade
from s3dest.store.tables import destinations, messages, webhook_deliveries, webhooks

BOX = SecretBox([b"k" * 32])
DAY_START = datetime(2026, 12, 1, tzinfo=UTC).timestamp()
DAY_END = DAY_START + 86400
AFTER = DAY_END + 300  # 00:05 UTC on 2 December: 1 December is due
SUMMARY = "summary.daily"
# Made-up credentials a summary must never carry.
ACCESS_KEY_ID = "AKIASUMMARYNOTSHOWN7"
SECRET_KEY = "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"
SESSION_TOKEN = "FwoGZXIvYXdzSummarySessionTokenNotShown"
EXTERNAL_ID = "s3dest-ext-summary-not-shown-0001"


def _engine(database_url: str | None, tmp_path: Path) -> Engine:
    return make_engine(Settings(data_dir=tmp_path / "data", database_url=database_url))


@pytest.fixture
def engine(database_url: str | None, tmp_path: Path) -> Iterator[Engine]:
    engine = _engine(database_url, tmp_path)
    upgrade(engine)
    yield engine
    engine.dispose()


def _project(engine: Engine, name: str) -> str:
    return projects.create_project(engine, name).project.id


def _destination(engine: Engine, project: str, name: str, **extra: Any) -> str:
    destination_id = f"{name[:12]}-{uuid.uuid4().hex[:16]}"
    fields: dict[str, Any] = {
        "name": name,
        "bucket": f"bucket-{name}",
        "region": "eu-west-1",
        "access_key_id": ACCESS_KEY_ID,
        "secret_access_key_enc": BOX.encrypt(SECRET_KEY, aad=f"{destination_id}:secret"),
        "session_token_enc": BOX.encrypt(SESSION_TOKEN, aad=f"{destination_id}:token"),
        "key_template": None,
        "storage_class": "STANDARD",
        "endpoint_url": None,
        "write_mode": "overwrite",
        "enabled": True,
    }
    fields.update(extra)
    insert_destination(
        engine,
        destination_id=destination_id,
        project_id=project,
        fields=DestinationFields(**fields),
    )
    return destination_id


def _hook(engine: Engine, project: str, events: list[str], *, created_at: float = 0.0) -> str:
    """An endpoint of `project` for `events`, as if it was added at `created_at` (long
    before the day by default)."""
    created = service.create(
        engine, BOX, project_id=project, url="http://127.0.0.1:9/hook", events=events, actor=CLI
    )
    with transaction(engine) as conn:
        conn.execute(
            update(webhooks)
            .where(webhooks.c.id == created.webhook.id)
            .values(created_at=created_at)
        )
    return created.webhook.id


def _messages(engine: Engine, project: str, destination: str, state: str, *at: float) -> None:
    """Messages of `destination` in `state`, delivered at each of `at` (or one, undelivered)."""
    with transaction(engine) as conn:
        count = conn.execute(select(messages.c.event_id)).all()
        rows = [
            {
                "event_id": f"e-{len(count) + i:06d}",
                "project_id": project,
                "destination_id": destination,
                "state": state,
                "event_time_ns": 0,
                "accepted_at": DAY_START - 86400,
                "body_size": 2,
                "next_attempt_at": DAY_START,
                "delivered_at": delivered_at if state == "delivered" else None,
                "updated_at": delivered_at or DAY_START,
            }
            for i, delivered_at in enumerate(at or (0.0,))
        ]
        conn.execute(insert(messages), rows)


def _summaries(engine: Engine) -> list[dict[str, Any]]:
    with transaction(engine) as conn:
        rows = conn.execute(
            select(webhook_deliveries.c.webhook_id, webhook_deliveries.c.payload)
            .where(webhook_deliveries.c.event_type == SUMMARY)
            .order_by(webhook_deliveries.c.id)
        ).all()
    return [{"webhook": r.webhook_id, **orjson.loads(r.payload)} for r in rows]


def test_the_day_counts_deliveries_on_its_side_of_midnight_and_what_waits_now(
    engine: Engine,
) -> None:
    project = _project(engine, "acme")
    lake = _destination(engine, project, "lake")
    archive = _destination(engine, project, "archive")
    empty = _destination(engine, project, "empty")
    hook = _hook(engine, project, [SUMMARY])
    before, first, noon, last = DAY_START - 0.001, DAY_START, DAY_START + 43200, DAY_END - 0.001
    _messages(engine, project, lake, "delivered", before, first, noon, last, DAY_END, DAY_END + 60)
    _messages(engine, project, lake, "parked")
    _messages(engine, project, lake, "parked")
    _messages(engine, project, lake, "queued")
    _messages(engine, project, archive, "delivered", noon)
    for _ in range(4):
        _messages(engine, project, archive, "held")
    with transaction(engine) as conn:
        conn.execute(
            update(destinations)
            .where(destinations.c.id == archive)
            .values(failing_since=noon, diagnosis="The bucket bucket-archive does not exist")
        )
    other = _project(engine, "other")  # its deliveries are not acme's
    _messages(engine, other, _destination(engine, other, "lake"), "delivered", noon, noon)

    assert summaries.enqueue_daily(engine, AFTER) == 1
    [sent] = _summaries(engine)
    assert sent["webhook"] == hook and sent["type"] == SUMMARY
    assert sent["timestamp"] == outbox.iso(AFTER)
    data = sent["data"]
    assert data["day"] == "2026-12-01" and data["projectId"] == project

    def described(did: str, name: str, **counts: Any) -> dict[str, Any]:
        return {
            "id": did,
            "name": name,
            "bucket": f"bucket-{name}",
            "region": "eu-west-1",
            "delivered": 0,
            "parked": 0,
            "held": 0,
            "failing": False,
            "diagnosis": None,
            **counts,
        }

    assert data["destinations"] == [
        described(
            archive,
            "archive",
            delivered=1,
            held=4,
            failing=True,
            diagnosis="The bucket bucket-archive does not exist",
        ),
        described(empty, "empty"),
        described(lake, "lake", delivered=3, parked=2),
    ]
    assert data["totals"] == {"delivered": 4, "parked": 2, "held": 4}


def test_only_subscribed_endpoints_that_existed_when_the_day_ended_get_it(engine: Engine) -> None:
    acme = _project(engine, "acme")
    _destination(engine, acme, "lake")
    subscribed = _hook(engine, acme, [SUMMARY, "message.parked"])
    _hook(engine, acme, ["message.parked", "destination.failing"])  # not subscribed
    _hook(engine, acme, [SUMMARY], created_at=DAY_END + 1)  # added after the day ended
    quiet = _project(engine, "quiet")  # endpoints, none subscribed
    _destination(engine, quiet, "lake")
    _hook(engine, quiet, ["destination.failing", "destination.recovered", "message.parked"])
    _project(engine, "bare")  # no endpoint at all

    assert summaries.enqueue_daily(engine, AFTER) == 1
    assert [s["webhook"] for s in _summaries(engine)] == [subscribed]
    with transaction(engine) as conn:
        others = conn.execute(
            select(webhook_deliveries.c.id).where(webhook_deliveries.c.event_type != SUMMARY)
        ).all()
    assert others == []


def test_a_restart_the_next_day_does_not_resend_and_an_outage_sends_only_the_last_day(
    database_url: str | None, tmp_path: Path
) -> None:
    first = _engine(database_url, tmp_path)
    upgrade(first)
    project = _project(first, "acme")
    _destination(first, project, "lake")
    hook = _hook(first, project, [SUMMARY])
    assert summaries.enqueue_daily(first, AFTER) == 1
    assert summaries.enqueue_daily(first, AFTER + 60) == 0
    first.dispose()

    restarted = _engine(database_url, tmp_path)  # another process, later that day
    try:
        upgrade(restarted)
        assert summaries.enqueue_daily(restarted, DAY_END + 22 * 3600) == 0
        # Down from 3 to 5 December: the summary of 4 December only, no backlog.
        assert summaries.enqueue_daily(restarted, DAY_END + 3 * 86400 + 600) == 1
        assert [(s["webhook"], s["data"]["day"]) for s in _summaries(restarted)] == [
            (hook, "2026-12-01"),
            (hook, "2026-12-04"),
        ]
        # A clock that went back a day sends nothing older than what was sent.
        assert summaries.enqueue_daily(restarted, DAY_END + 2 * 86400 + 600) == 0
    finally:
        restarted.dispose()


def test_concurrent_runs_on_several_engines_write_one_delivery_per_endpoint_and_day(
    database_url: str | None, tmp_path: Path
) -> None:
    engines = [_engine(database_url, tmp_path) for _ in range(3)]
    try:
        upgrade(engines[0])
        hooks = []
        for name in ("acme", "globex"):
            project = _project(engines[0], name)
            lake = _destination(engines[0], project, "lake")
            _messages(engines[0], project, lake, "delivered", *(DAY_START + i for i in range(50)))
            hooks += [_hook(engines[0], project, [SUMMARY]) for _ in range(2)]
        for day in range(5):
            now = AFTER + day * 86400
            start = threading.Barrier(len(engines))
            written: list[int] = []
            threads = [
                threading.Thread(target=_race, args=(e, now, start, written)) for e in engines
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert sum(written) == len(hooks), written
        sent = _summaries(engines[0])
        assert len(sent) == 5 * len(hooks)
        pairs = [(s["webhook"], s["data"]["day"]) for s in sent]
        assert len(set(pairs)) == len(pairs)
        assert {h for h, _ in pairs} == set(hooks)
    finally:
        for e in engines:
            e.dispose()


def _race(engine: Engine, now: float, start: threading.Barrier, written: list[int]) -> None:
    start.wait()
    written.append(summaries.enqueue_daily(engine, now))


def test_no_secret_reaches_the_payload(engine: Engine) -> None:
    project = _project(engine, "acme")
    keyed = _destination(engine, project, "keyed")
    _destination(
        engine,
        project,
        "role",
        access_key_id=None,
        secret_access_key_enc=None,
        session_token_enc=None,
        role_arn="arn:aws:iam::123456789012:role/s3dest-writer",
        external_id=EXTERNAL_ID,
    )
    _messages(engine, project, keyed, "delivered", DAY_START + 10)
    created = service.create(
        engine, BOX, project_id=project, url="http://127.0.0.1:9/h", events=[SUMMARY], actor=CLI
    )
    with transaction(engine) as conn:
        conn.execute(update(webhooks).values(created_at=0.0))
        stored = conn.execute(select(destinations.c.secret_access_key_enc)).scalars().all()
    assert summaries.enqueue_daily(engine, AFTER) == 1
    with transaction(engine) as conn:
        body = conn.execute(select(webhook_deliveries.c.payload)).scalar_one()
    for secret in (ACCESS_KEY_ID, SECRET_KEY, SESSION_TOKEN, EXTERNAL_ID, created.secret):
        assert secret not in body
    for enc in stored:
        assert enc is None or enc not in body
    assert [d["name"] for d in orjson.loads(body)["data"]["destinations"]] == ["keyed", "role"]


def test_counting_reads_while_another_connection_holds_sqlites_write_lock(
    tmp_path: Path,
) -> None:
    engine = _engine(None, tmp_path)
    try:
        upgrade(engine)
        project = _project(engine, "acme")
        lake = _destination(engine, project, "lake")
        _messages(engine, project, lake, "delivered", DAY_START + 1, DAY_START + 2)
        hook = _hook(engine, project, [SUMMARY])
        writer = sqlite3.connect(str(tmp_path / "data" / "s3dest.db"), isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")  # a long write elsewhere: counting must not wait
        try:
            [due] = list(summaries.pending(engine, summaries.last_completed_day(AFTER)))
        finally:
            writer.execute("ROLLBACK")
            writer.close()
        assert due.webhook_ids == (hook,) and due.data["totals"]["delivered"] == 2
        assert summaries.enqueue(engine, due, AFTER) == 1
        assert summaries.enqueue(engine, due, AFTER) == 0  # written once
    finally:
        engine.dispose()


def test_the_counting_queries_use_the_indexes(engine: Engine) -> None:
    """SQLite's plan, and PostgreSQL's with sequential scans off (its tables are tiny here):
    the day's deliveries come from ix_messages_delivered (delivery time, delivered only),
    what waits from ix_messages_destination_state; neither reads a project's whole history."""
    params = {"start": DAY_START, "end": DAY_END, "project": "p-1"}
    delivered, waiting = summaries.counting_statements(engine.dialect.name)
    sqlite = engine.dialect.name == "sqlite"
    with transaction(engine) as conn:
        if not sqlite:
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")

        def plan(sql: str) -> str:
            rows = conn.execute(
                text(("EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN ") + sql), params
            )
            return " | ".join(str(r[-1] if sqlite else r[0]) for r in rows)

        assert "ix_messages_delivered" in plan(delivered), plan(delivered)
        assert "ix_messages_destination_state" in plan(waiting), plan(waiting)
        assert "SCAN messages" not in plan(delivered) + plan(waiting)  # SQLite's full scan
        assert "Seq Scan on messages" not in plan(delivered) + plan(waiting)


def test_the_job_checks_the_database_once_a_day_is_done(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project(engine, "acme")
    _destination(engine, project, "lake")
    _hook(engine, project, [SUMMARY])
    job = DailySummaries(engine)
    calls: list[float] = []
    real = summaries.enqueue_daily

    def counted(e: Engine, now: float) -> int:
        calls.append(now)
        return real(e, now)

    monkeypatch.setattr(summaries, "enqueue_daily", counted)
    assert job.run_once(AFTER) == 1
    assert job.run_once(AFTER + 60) == 0
    assert job.run_once(AFTER + 3600) == 0
    assert calls == [AFTER]  # nothing more to do that day: no query
    assert job.run_once(AFTER + 86400) == 1  # the next day's
    assert len(calls) == 2


def test_endpoints_subscribe_to_it_and_bad_names_keep_their_error() -> None:
    assert SUMMARY in outbox.EVENT_TYPES and set(get_args(EventType)) == set(outbox.EVENT_TYPES)
    assert service.check_events([SUMMARY, "message.parked"]) == (SUMMARY, "message.parked")
    # Opt-in: an endpoint created without `events` gets the three changes, not the summary.
    assert service.check_events(None) == outbox.DEFAULT_EVENTS and SUMMARY not in (
        outbox.DEFAULT_EVENTS
    )
    with pytest.raises(InvalidInput) as bad:
        service.check_events(["summary.weekly"])
    assert "unknown event type 'summary.weekly'" in bad.value.fields["events"]
    assert SUMMARY in bad.value.fields["events"]
