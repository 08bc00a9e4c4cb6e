"""Database engine and migrations: the only place that creates connections.

SQLite runs in WAL mode with ``synchronous=FULL``: a 202 is only returned after the
batch's commit reached the disk. PostgreSQL uses its defaults (fsync on commit).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import DatabaseError, InterfaceError, OperationalError
from sqlalchemy.pool import NullPool

from s3dest.datadir import private_data_dir, private_database_file
from s3dest.errors import InvalidInput, StorageUnavailable
from s3dest.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest migration's revision (tests/unit/test_migrations.py keeps it equal to Alembic's
# head). A database already there skips Alembic, which costs ~0.5 s of start-up per process.
SCHEMA_HEAD = "0015"
# SQLite's WAL is truncated back to this after each checkpoint.
WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024
_PG_MIGRATION_LOCK = 7_305_115  # advisory lock id: one migrator at a time across nodes


def make_engine(settings: Settings) -> Engine:
    url = settings.sqlalchemy_url
    if not url.startswith(("sqlite", "postgresql")):
        # Another driver's URL was an ImportError (or an ArgumentError) traceback.
        raise InvalidInput(
            "S3DEST_DATABASE_URL is not a PostgreSQL URL",
            {
                "S3DEST_DATABASE_URL": "use postgresql://user:password@host:5432/db, or unset "
                "it for SQLite in the data directory"
            },
        )
    if url.startswith("sqlite"):
        try:
            private_data_dir(settings.data_dir)
        except OSError as exc:
            raise StorageUnavailable(
                f"cannot create the data directory {settings.data_dir}: {exc.strerror}"
            ) from None
        if not os.access(settings.data_dir, os.W_OK):
            raise StorageUnavailable(
                f"the data directory {settings.data_dir.resolve()} is read-only; s3dest needs "
                "to write its database there. Make it writable or set S3DEST_DATA_DIR"
            )
        database = make_url(url).database
        if database and database != ":memory:":
            private_database_file(Path(database))
        engine = create_engine(
            url,
            connect_args={"timeout": 30, "check_same_thread": False},
            pool_size=8,
            max_overflow=8,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
            # Let SQLAlchemy's BEGIN be the only transaction control; then set pragmas.
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            # Before anything creates a table: a new database frees pruned pages on
            # `PRAGMA incremental_vacuum` (store.retention); an older one is converted
            # once by `upgrade`. Only then: setting it writes, so on every connection it
            # would wait for (or fail on) another connection's write lock.
            if cursor.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone() is None:
                cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
            cursor.execute("PRAGMA journal_mode=WAL")
            # After a checkpoint the WAL is cut back to this size (it otherwise stays as
            # large as it ever grew: 635 MB after large messages, issue 16).
            cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            # IMMEDIATE takes the write lock up front, so two writers never deadlock on
            # an upgrade from a read lock. A transaction that only reads (`reading`) does
            # not: in WAL mode it reads its snapshot while another connection writes.
            options = conn.get_execution_options()
            if options.get(_READ_ONLY):
                conn.exec_driver_sql("BEGIN DEFERRED")
            elif options.get(TRY_ONCE):
                conn.exec_driver_sql("BEGIN IMMEDIATE")  # with the caller's busy_timeout
            else:
                _begin_immediate(conn)

        return engine
    return create_engine(
        url,
        pool_size=10,
        max_overflow=10,
        pool_pre_ping=True,
        pool_recycle=300,
    )


# An execution option: BEGIN IMMEDIATE once, as the connection's busy_timeout says, without
# s3dest's own tries (for writes that are skipped when the lock is busy: projects.touch_key).
TRY_ONCE = "s3dest_try_once"

# How often, and for how long, a writer tries for SQLite's write lock itself before leaving
# it to SQLite's busy handler (which then waits up to busy_timeout).
_LOCK_POLL_SECONDS = 0.001
_LOCK_POLL_FOR_SECONDS = 1.0
_BUSY_TIMEOUT_MS = 30_000


def _begin_immediate(conn: Connection) -> None:
    """BEGIN IMMEDIATE, trying for the write lock every millisecond for the first second.
    SQLite's busy handler sleeps 1, 2, 5, 10, 15, 20, 25 … 100 ms between tries: behind a
    big write that takes turns (store.staging leaves the lock free after each of its short
    transactions), a one-row write kept missing the gaps, and its p99 was ~150 ms. After
    the first second, the busy handler waits as before (and its error is SQLAlchemy's)."""
    raw = conn.connection.dbapi_connection
    assert raw is not None
    raw.execute("PRAGMA busy_timeout=0")
    try:
        give_up = time.monotonic() + _LOCK_POLL_FOR_SECONDS
        while True:
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= give_up:
                    break
            time.sleep(_LOCK_POLL_SECONDS)
    finally:
        raw.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_null_pool_engine(settings: Settings) -> Engine:
    return create_engine(settings.sqlalchemy_url, poolclass=NullPool)


def schema_revision(engine: Engine) -> str | None:
    """The database's Alembic revision, or None when it has never been migrated."""
    try:
        with engine.connect() as conn:
            row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    except DatabaseError:  # no alembic_version table yet (or no database at all)
        return None
    return None if row is None else str(row[0])


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision (safe to call from several processes)."""
    # An unreachable database reads as None here; Alembic's attempt then reports it.
    if schema_revision(engine) == SCHEMA_HEAD:
        return
    _alembic_upgrade(engine)
    if engine.dialect.name == "sqlite":
        _incremental_auto_vacuum(engine)


def _incremental_auto_vacuum(engine: Engine) -> None:
    """A database created before revision 0008 has auto_vacuum=NONE: pruning then leaves
    free pages in the file for good. Switching needs one VACUUM (it rewrites the file: as
    long as copying it takes, with the write lock held, and as much free disk again), done
    here once, when the schema is upgraded. New databases are created in that mode."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        (mode,) = cursor.execute("PRAGMA auto_vacuum").fetchone()
        if mode != 2:  # 2 = INCREMENTAL
            cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
            cursor.execute("VACUUM")
        cursor.close()
    finally:
        raw.close()


def _alembic_upgrade(engine: Engine) -> None:
    import logging

    # Alembic's INFO lines ("setup plugin …", seven of them) are noise on a CLI command's
    # first run. Most are logged while alembic is imported, so the level is set first.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _PG_MIGRATION_LOCK})
                conn.commit()
            try:
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
                conn.commit()
            finally:
                if engine.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _PG_MIGRATION_LOCK})
                    conn.commit()
    except OperationalError as exc:
        raise StorageUnavailable(f"cannot prepare the database: {exc.orig}") from None


#: The transaction an `atomic` block of this thread (context) holds, with its engine.
_ATOMIC: ContextVar[tuple[Engine, Connection] | None] = ContextVar("s3dest_atomic", default=None)


@contextmanager
def atomic(engine: Engine) -> Iterator[None]:
    """One transaction for the whole block: every `transaction` and `reading` of `engine`
    opened inside it (in this thread) joins it as a savepoint, and all of it commits at the
    end or none of it does. A configuration change and its audit entry are written so
    (s3dest.access.audit): in two transactions, a crash or a failed audit write between
    them left a change with no entry, or an entry for a change that did not commit.
    Nothing slow belongs inside: on SQLite the block holds the write lock."""
    held = _ATOMIC.get()
    if held is not None and held[0] is engine:
        yield
        return
    with transaction(engine) as conn:
        token = _ATOMIC.set((engine, conn))
        try:
            yield
        finally:
            _ATOMIC.reset(token)


@contextmanager
def _joined(engine: Engine) -> Iterator[Connection | None]:
    """The enclosing `atomic` block's connection in a savepoint (so that an error caught
    inside, as a Conflict from an IntegrityError, undoes only its own statements), or
    None outside one."""
    held = _ATOMIC.get()
    if held is None or held[0] is not engine:
        yield None
        return
    conn = held[1]
    try:
        with conn.begin_nested():
            yield conn
    except (OperationalError, InterfaceError) as exc:
        raise StorageUnavailable(_storage_message(exc)) from None


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction; database failures become StorageUnavailable (a 503, not a 500).
    Inside an `atomic` block of the same engine, a part of its transaction."""
    with _joined(engine) as joined:
        if joined is not None:
            yield joined
            return
    try:
        with engine.begin() as conn:
            yield conn
    except (OperationalError, InterfaceError) as exc:
        raise StorageUnavailable(_storage_message(exc)) from None


@contextmanager
def unsynced_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction whose commit does not wait for the disk on SQLite (synchronous=NORMAL:
    the WAL is not flushed at its commit; a power cut may undo it, never half of it). Only
    for steps that a later flushed commit makes durable, or that are redone after a crash
    (store.staging: each short transaction's flush cost more than its writes). Elsewhere
    the same as `transaction`."""
    if engine.dialect.name != "sqlite":
        with transaction(engine) as conn:
            yield conn
        return
    try:
        with engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            assert raw is not None
            # Before BEGIN: the setting is the connection's, read at each commit.
            raw.execute("PRAGMA synchronous=NORMAL")
            try:
                with conn.begin():
                    yield conn
            finally:
                raw.execute("PRAGMA synchronous=FULL")
    except (OperationalError, InterfaceError) as exc:
        raise StorageUnavailable(_storage_message(exc)) from None


_READ_ONLY = "s3dest_read_only"


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A transaction that only reads. On SQLite it takes no write lock: every transaction
    used to (BEGIN IMMEDIATE), so each authenticated request and each GET of one project
    waited behind another project's batch commit (~1 s for 8 MiB under load, issue 13).
    Elsewhere the same as `transaction`. Writing in it is a mistake (SQLite may refuse
    the upgrade at once rather than wait). Inside an `atomic` block, a part of its
    transaction (it then sees the block's writes)."""
    with _joined(engine) as joined:
        if joined is not None:
            yield joined
            return
    try:
        with engine.connect() as conn:
            conn.execution_options(**{_READ_ONLY: True})
            with conn.begin():
                yield conn
    except (OperationalError, InterfaceError) as exc:
        raise StorageUnavailable(_storage_message(exc)) from None


def ping(engine: Engine) -> None:
    """The database answers (StorageUnavailable if not): the liveness check."""
    with transaction(engine) as conn:
        conn.execute(text("SELECT 1"))


def _storage_message(exc: OperationalError | InterfaceError) -> str:
    text_ = str(exc.orig)
    lowered = text_.lower()
    if ("disk" in lowered and "full" in lowered) or "no space" in lowered:
        return "the database disk is full; nothing was stored. Free space and send again"
    if "readonly" in lowered or "read-only" in lowered:
        return "the database is read-only; nothing was stored. Check the data directory"
    return f"the database is unavailable ({text_.splitlines()[0][:200]}); nothing was stored"
