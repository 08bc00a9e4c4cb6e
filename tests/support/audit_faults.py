"""Faults injected into a running server's database, for one project's audit entries only:
the audit insert fails, or the transaction fails at its commit after the audit insert ran.

They are triggers on `audit_log` (nothing in the server knows of them), conditioned on the
project, so that other tenants of a shared server are untouched:

* `INSERT_FAILS`: a BEFORE INSERT trigger raises (on PostgreSQL with SQLSTATE 57014,
  query_canceled, which the server reads as "the database is unavailable", as it would a
  statement timeout).
* `COMMIT_FAILS`: an AFTER INSERT trigger adds a row that breaks a deferred foreign key, so
  the audit insert succeeds and the COMMIT that follows fails (SQLite and PostgreSQL check
  deferred keys at the outermost commit).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tests.support.s3dest_server import S3destEnv

_TABLES = (
    "CREATE TABLE IF NOT EXISTS test_fault_parent (id TEXT PRIMARY KEY)",
    "CREATE TABLE IF NOT EXISTS test_fault_orphan (ref TEXT REFERENCES test_fault_parent(id) "
    "DEFERRABLE INITIALLY DEFERRED)",
)


@dataclass(frozen=True)
class Fault:
    name: str
    sqlite: tuple[str, ...]
    postgres: tuple[str, ...]

    def __str__(self) -> str:
        return self.name


INSERT_FAILS = Fault(
    "the audit insert fails",
    sqlite=(
        "CREATE TRIGGER {trigger} BEFORE INSERT ON audit_log WHEN NEW.project_id = '{project}' "
        "BEGIN SELECT RAISE(ABORT, 'injected: the audit insert fails'); END",
    ),
    postgres=(
        "CREATE OR REPLACE FUNCTION test_fault_refuse() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'injected: the audit insert fails' USING ERRCODE = '57014'; "
        "END $$",
        "CREATE TRIGGER {trigger} BEFORE INSERT ON audit_log FOR EACH ROW "
        "WHEN (NEW.project_id = '{project}') EXECUTE FUNCTION test_fault_refuse()",
    ),
)

COMMIT_FAILS = Fault(
    "the commit fails after the audit insert",
    sqlite=(
        *_TABLES,
        "CREATE TRIGGER {trigger} AFTER INSERT ON audit_log WHEN NEW.project_id = '{project}' "
        "BEGIN INSERT INTO test_fault_orphan (ref) VALUES ('no such parent'); END",
    ),
    postgres=(
        *_TABLES,
        "CREATE OR REPLACE FUNCTION test_fault_orphan() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN INSERT INTO test_fault_orphan (ref) VALUES ('no such parent'); RETURN NEW; "
        "END $$",
        "CREATE TRIGGER {trigger} AFTER INSERT ON audit_log FOR EACH ROW "
        "WHEN (NEW.project_id = '{project}') EXECUTE FUNCTION test_fault_orphan()",
    ),
)

FAULTS = (INSERT_FAILS, COMMIT_FAILS)


@contextmanager
def injected(env: S3destEnv, fault: Fault, project_id: str) -> Iterator[None]:
    """`fault` holds for `project_id`'s audit entries inside the block."""
    assert re.fullmatch(r"[0-9a-zA-Z-]+", project_id), project_id  # it goes into DDL
    trigger = "test_fault_" + re.sub(r"\W", "_", project_id)
    engine = create_engine(env.settings().sqlalchemy_url, poolclass=NullPool)
    postgres = engine.dialect.name == "postgresql"
    statements = fault.postgres if postgres else fault.sqlite
    drop = f"DROP TRIGGER {trigger}" + (" ON audit_log" if postgres else "")
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(text(statement.format(trigger=trigger, project=project_id)))
        try:
            yield
        finally:
            with engine.begin() as conn:
                conn.execute(text(drop))
    finally:
        engine.dispose()
