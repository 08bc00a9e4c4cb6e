"""Retention on the store (SPEC §4), on a real SQLite file: delivered records older than
the window are pruned in batches, with their attempts; held, parked and pending messages
stay whatever their age; the freed pages go back to the file system; a database created
before incremental auto-vacuum is converted when its schema is upgraded."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from s3dest.errors import InvalidInput
from s3dest.retention import Pruner, interval_for
from s3dest.settings import Settings, parse_duration
from s3dest.store import retention
from s3dest.store.engine import make_engine, transaction, upgrade

INSERT = (
    "INSERT INTO messages (event_id, project_id, destination_id, state, event_time_ns, "
    "accepted_at, connection_id, topic, object_name, body, body_size, chunked, envelope, "
    "attempts, next_attempt_at, delivered_at, updated_at) "
    "VALUES (?, 'p', 'd', ?, 0, 0, '', '', '', NULL, 0, 0, ?, 1, 0, ?, 0)"
)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(Settings(data_dir=tmp_path))
    upgrade(engine)
    yield engine
    engine.dispose()


def _add(engine: Engine, rows: list[tuple[str, str, float | None]], size: int = 100) -> None:
    with transaction(engine) as conn:
        for event_id, state, delivered_at in rows:
            conn.exec_driver_sql(INSERT, (event_id, state, os.urandom(size), delivered_at))
            conn.exec_driver_sql(
                "INSERT INTO delivery_attempts (event_id, worker, started_at, finished_at, "
                "outcome) VALUES (?, 'w', 0, 0, ?)",
                (event_id, state),
            )


def _ids(engine: Engine, table: str = "messages") -> set[str]:
    with transaction(engine) as conn:
        return {r[0] for r in conn.exec_driver_sql(f"SELECT event_id FROM {table}")}


def test_only_delivered_records_older_than_the_window_are_pruned(engine: Engine) -> None:
    now = time.time()
    old = now - 3600
    _add(
        engine,
        [(f"old-{i}", "delivered", old) for i in range(1200)]
        + [("recent", "delivered", now), ("held", "held", None), ("parked", "parked", None)]
        + [("queued", "queued", None), ("retrying", "retrying", None)]
        # A parked message that was delivered once and replayed keeps its old delivered_at.
        + [("parked-after-replay", "parked", old)],
    )
    pruner = Pruner(engine, Settings(retain_delivered=60))
    assert pruner.run_once() == 1200  # three batches of at most BATCH_ROWS
    kept = {"recent", "held", "parked", "queued", "retrying", "parked-after-replay"}
    assert _ids(engine) == kept
    assert _ids(engine, "delivery_attempts") == kept  # the pruned ones' attempts went too
    assert pruner.run_once() == 0


def test_a_batch_is_bounded(engine: Engine) -> None:
    _add(engine, [(f"m{i}", "delivered", 1.0) for i in range(30)])
    assert retention.prune_delivered(engine, older_than=2.0, limit=7) == 7
    assert len(_ids(engine)) == 23


def test_pruning_gives_the_space_back_to_the_file_system(engine: Engine, tmp_path: Path) -> None:
    _add(engine, [(f"m{i}", "delivered", 1.0) for i in range(2000)], size=4000)
    _add(engine, [("parked", "parked", None)])

    def on_disk() -> int:
        return sum(p.stat().st_size for p in tmp_path.glob("s3dest.db*"))

    before = on_disk()
    assert before > 8_000_000
    assert Pruner(engine, Settings(retain_delivered=60)).run_once() == 2000
    after = on_disk()
    assert after < before / 5, (before, after)
    assert (
        not (tmp_path / "s3dest.db-wal").exists()
        or (tmp_path / "s3dest.db-wal").stat().st_size < 1_000_000
    )
    assert _ids(engine) == {"parked"}


def test_an_older_database_is_converted_to_incremental_auto_vacuum(tmp_path: Path) -> None:
    # A file made the way s3dest made them before revision 0008: auto_vacuum NONE.
    with sqlite3.connect(tmp_path / "s3dest.db") as conn:
        conn.execute("CREATE TABLE kept (x INTEGER)")
        conn.execute("INSERT INTO kept VALUES (42)")
    old = sqlite3.connect(tmp_path / "s3dest.db")
    assert old.execute("PRAGMA auto_vacuum").fetchone() == (0,)
    old.close()
    engine = make_engine(Settings(data_dir=tmp_path))
    try:
        upgrade(engine)
        with transaction(engine) as conn:
            assert conn.exec_driver_sql("PRAGMA auto_vacuum").scalar() == 2
            assert conn.exec_driver_sql("SELECT x FROM kept").scalar() == 42
    finally:
        engine.dispose()


def test_durations() -> None:
    assert parse_duration("7d") == 7 * 86400
    assert parse_duration("12h") == 12 * 3600
    assert parse_duration("30m") == 1800
    assert parse_duration("90s") == parse_duration("90") == 90
    assert parse_duration("1.5") == 1.5
    for bad in ("", "d", "7w", "-1d", "seven"):
        with pytest.raises(ValueError, match="duration"):
            parse_duration(bad)
    assert Settings().retain_delivered == 7 * 86400


def test_a_bad_retention_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3DEST_RETAIN_DELIVERED", "a week")
    with pytest.raises(InvalidInput, match="S3DEST_RETAIN_DELIVERED") as info:
        Settings.from_env()
    assert "7d" in info.value.fields["S3DEST_RETAIN_DELIVERED"]
    monkeypatch.setenv("S3DEST_RETAIN_DELIVERED", "2d")
    assert Settings.from_env().retain_delivered == 2 * 86400


def test_the_pruning_interval_follows_the_window() -> None:
    assert interval_for(7 * 86400) == 60
    assert interval_for(2) == 0.5
    assert interval_for(0) == 0.2
