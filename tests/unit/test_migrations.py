"""The start-up fast path trusts SCHEMA_HEAD; it must be Alembic's real head."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from s3dest.settings import Settings
from s3dest.store.engine import MIGRATIONS, SCHEMA_HEAD, make_engine, schema_revision, upgrade


def test_schema_head_is_alembics_head() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_heads() == [SCHEMA_HEAD]


def test_upgrade_migrates_a_new_database_once(tmp_path: Path) -> None:
    engine = make_engine(Settings(data_dir=tmp_path))
    try:
        assert schema_revision(engine) is None
        upgrade(engine)
        assert schema_revision(engine) == SCHEMA_HEAD
        tables = set(inspect(engine).get_table_names())
        assert {"projects", "destinations", "messages"} <= tables, tables
        upgrade(engine)  # at head: nothing to do, nothing breaks
        assert schema_revision(engine) == SCHEMA_HEAD
    finally:
        engine.dispose()


def test_sqlite_claim_reads_the_due_index_in_order(tmp_path: Path) -> None:
    """A claim must not sort the backlog: its cost would grow with every queued message."""
    from s3dest.store.queue import _sqlite

    engine = make_engine(Settings(data_dir=tmp_path))
    try:
        upgrade(engine)
        # The claim's own SQL with its parameters: owner, lease expiry, now, now, limit.
        values = ("w", 2.0, 1.0, 1.0, 10)
        with engine.connect() as conn:
            plan = [
                row[3]
                for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + _sqlite.CLAIM, values)
            ]
        assert any("ix_messages_due" in step for step in plan), plan
        assert not any("TEMP B-TREE" in step or "ix_messages_claim" in step for step in plan), plan
    finally:
        engine.dispose()
