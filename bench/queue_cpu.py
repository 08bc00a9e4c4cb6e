"""CPU of the queue's database work per message: enqueue, then claim → finish until empty.

    .venv/bin/python -m bench.queue_cpu [--db sqlite|postgres] [--messages 20000]
                                        [--prefill 100000] [--runs 3] [--batch 32]
                                        [--mode steady|backlog] [--skip-raw]

No HTTP, no S3: `queue.enqueue` in batches of 100 (as ingest does) and a loop of
`queue.claim(batch)` → `queue.finish(all delivered)` until the queue is empty — after each
batch (`steady`, a pipeline keeping up) or after all of them (`backlog`) — on a table
that already holds `--prefill` delivered messages. Printed per message and phase: Python CPU
(time.process_time) and, for PostgreSQL, the server's CPU (postmaster, backends and reaped
children from /proc) and commits (pg_stat_database.xact_commit; pool pre-ping's `SELECT 1`
counts as one). Each run uses a fresh
database; the medians of the runs come last.

On SQLite in `steady` mode, each run is followed by the same work without s3dest's code
(`--skip-raw` to leave it out): Python's sqlite3 module on a fresh database of the same
schema (migrations, pragmas: WAL, synchronous=FULL), the very statements of
`store/queue/_sqlite.py` (INSERT of 100 in one executemany, the claim's UPDATE …
RETURNING, the outcomes' executemany and attempt rows) in BEGIN IMMEDIATE … COMMIT, no
SQLAlchemy, no dataclasses: what the database's own work costs from CPython, the floor
s3dest's queue code sits on (issue 16).
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._processes import children_of, proc_cpu_seconds, proc_tree_cpu_seconds
from sqlalchemy import Engine, insert, text

from s3dest.messages import new_stamp
from s3dest.settings import Settings
from s3dest.store import queue
from s3dest.store.engine import make_engine, transaction, upgrade
from s3dest.store.tables import destinations, projects

PROJECT = "p-bench"
DEST = "d-bench"
BODY = b'{"data":{"action":"x","projectId":"p","pad":"' + b"x" * 980 + b'"}}'


def _server_cpu(pg: Any) -> float:
    if pg is None:
        return 0.0
    postmaster = int((pg.data_dir / "postmaster.pid").read_text().split()[0])
    total = proc_tree_cpu_seconds(postmaster)
    for child in children_of(postmaster):
        with contextlib.suppress(OSError):
            total += proc_cpu_seconds(child)
    return total


def _commits(engine: Engine) -> int:
    if engine.dialect.name != "postgresql":
        return 0
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
            ).scalar_one()
        )


def _row(now: float) -> dict[str, Any]:
    stamp = new_stamp()
    return {
        "event_id": stamp.event_id,
        "project_id": PROJECT,
        "destination_id": DEST,
        "state": "queued",
        "event_time_ns": stamp.event_time_ns,
        "accepted_at": now,
        "connection_id": "",
        "topic": "",
        "object_name": "account",
        "body": BODY,
        "body_size": len(BODY),
        "chunked": False,
        "envelope": None,
        "attempts": 0,
        "next_attempt_at": now,
        "updated_at": now,
    }


def _setup(engine: Engine, prefill: int) -> None:
    upgrade(engine)
    now = time.time()
    with transaction(engine) as conn:
        conn.execute(insert(projects), [{"id": PROJECT, "name": "p", "created_at": now}])
        conn.execute(
            insert(destinations),
            [
                {
                    "id": DEST,
                    "project_id": PROJECT,
                    "name": "d",
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
            ],
        )
        if prefill:
            # Delivered history: what a long-running queue table mostly holds.
            series = (
                "generate_series(1, :n) AS g(i)"
                if engine.dialect.name == "postgresql"
                else "(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s "
                "WHERE i < :n) SELECT i FROM s) AS g"
            )
            conn.execute(
                text(
                    "INSERT INTO messages (event_id, project_id, destination_id, state, "
                    "event_time_ns, accepted_at, connection_id, topic, object_name, body, "
                    "body_size, chunked, attempts, next_attempt_at, bucket, object_key, etag, "
                    "delivered_at, updated_at) "
                    "SELECT '0000-old-' || i, :p, :d, 'delivered', 0, :t, '', '', 'account', "
                    "NULL, 1024, false, 1, :t, 'b', 'k/' || i, 'etag', :t, :t "
                    f"FROM {series}"
                ),
                {"n": prefill, "p": PROJECT, "d": DEST, "t": now - 3600},
            )
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(
                text("VACUUM ANALYZE messages")
            )


def _drain(engine: Engine, batch: int) -> int:
    delivered = 0
    while True:
        items = queue.claim(engine, "w-bench", batch, 60)
        if not items:
            return delivered
        t = time.time()
        outcomes = [
            queue.Outcome(
                event_id=i.event_id,
                state="delivered",
                started_at=t,
                finished_at=t,
                bucket="b",
                key=f"k/{i.event_id}",
                etag='"0123456789abcdef0123456789abcdef"',
                destination_id=i.destination_id,
                destination_version=i.destination_version,
            )
            for i in items
        ]
        delivered += queue.finish(engine, "w-bench", "w-bench", outcomes)


def run_steady(engine: Engine, pg: Any, messages: int, batch: int) -> dict[str, float]:
    """A short backlog, as in a pipeline keeping up: enqueue 100, drain them, repeat."""
    py0, pg0, c0 = time.process_time(), _server_cpu(pg), _commits(engine)
    done = delivered = 0
    enqueue_py = enqueue_pg = 0.0
    while done < messages:
        rows = [_row(time.time()) for _ in range(min(100, messages - done))]
        a_py, a_pg = time.process_time(), _server_cpu(pg)
        with transaction(engine) as conn:
            queue.enqueue(conn, rows)
        b_py, b_pg = time.process_time(), _server_cpu(pg)
        enqueue_py += b_py - a_py
        enqueue_pg += b_pg - a_pg
        done += len(rows)
        delivered += _drain(engine, batch)
    py1, pg1, c1 = time.process_time(), _server_cpu(pg), _commits(engine)
    assert delivered == messages, (delivered, messages)
    ms = 1000 / messages
    return {
        "enqueue_py": enqueue_py * ms,
        "enqueue_pg": enqueue_pg * ms,
        "total_py": (py1 - py0) * ms,
        "total_pg": (pg1 - pg0) * ms,
        "commits": (c1 - c0) / messages,
    }


def run(engine: Engine, pg: Any, messages: int, batch: int) -> dict[str, float]:
    """A backlog: enqueue everything, then drain it."""
    out: dict[str, float] = {}
    # enqueue, in ingest's batches of 100
    py0, pg0, c0 = time.process_time(), _server_cpu(pg), _commits(engine)
    done = 0
    while done < messages:
        now = time.time()
        rows = [_row(now) for _ in range(min(100, messages - done))]
        with transaction(engine) as conn:
            queue.enqueue(conn, rows)
        done += len(rows)
    py1, pg1 = time.process_time(), _server_cpu(pg)
    delivered = _drain(engine, batch)
    py2, pg2, c2 = time.process_time(), _server_cpu(pg), _commits(engine)
    assert delivered == messages, (delivered, messages)
    ms = 1000 / messages
    out["enqueue_py"] = (py1 - py0) * ms
    out["enqueue_pg"] = (pg1 - pg0) * ms
    out["drain_py"] = (py2 - py1) * ms
    out["drain_pg"] = (pg2 - pg1) * ms
    out["total_py"] = out["enqueue_py"] + out["drain_py"]
    out["total_pg"] = out["enqueue_pg"] + out["drain_pg"]
    out["commits"] = (c2 - c0) / messages
    return out


def run_raw_sqlite(path: Path, messages: int, batch: int) -> dict[str, float]:
    """`run_steady`'s work in bare sqlite3 on the database file at `path` (set up by
    `_setup`): the cost of the statements themselves, from Python."""
    from s3dest.store.queue import _sqlite

    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON"):
        conn.execute(f"PRAGMA {pragma}")
    names = tuple(_row(0.0))
    insert_sql = f"INSERT INTO messages ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    etag = '"0123456789abcdef0123456789abcdef"'
    py0 = time.process_time()
    done = delivered = 0
    enqueue_py = 0.0
    while done < messages:
        rows = [tuple(_row(time.time()).values()) for _ in range(min(100, messages - done))]
        a = time.process_time()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(insert_sql, rows)
        conn.execute("COMMIT")
        enqueue_py += time.process_time() - a
        done += len(rows)
        while True:
            now = time.time()
            conn.execute("BEGIN IMMEDIATE")
            claimed = conn.execute(_sqlite.CLAIM, ("w-raw", now + 60, now, now, batch)).fetchall()
            conn.execute("COMMIT")
            if not claimed:
                break
            t = time.time()
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                _sqlite.FINISH,
                [
                    ("delivered", "b", f"k/{r[0]}", etag, None, None, None, t, t, t, r[0], "w-raw")
                    for r in claimed
                ],
            )
            conn.executemany(
                _sqlite.ATTEMPT, [(r[0], "w-raw", t, t, "delivered", None) for r in claimed]
            )
            conn.execute("COMMIT")
            delivered += len(claimed)
    total = time.process_time() - py0
    conn.close()
    assert delivered == messages, (delivered, messages)
    ms = 1000 / messages
    return {"raw_enqueue_py": enqueue_py * ms, "raw_total_py": total * ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--prefill", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument(
        "--mode",
        choices=["backlog", "steady"],
        default="steady",
        help="backlog: enqueue all, then drain; steady: enqueue 100, drain, repeat",
    )
    parser.add_argument(
        "--skip-raw",
        action="store_true",
        help="SQLite: no bare-sqlite3 run of the same statements after each run",
    )
    args = parser.parse_args()
    results: list[dict[str, float]] = []
    with contextlib.ExitStack() as stack:
        pg = None
        if args.db == "postgres":
            from tests.support.postgres import running_postgres

            pg = stack.enter_context(running_postgres())
        for n in range(args.runs):
            with tempfile.TemporaryDirectory() as tmp:
                url = pg.create_database() if pg is not None else None
                engine = make_engine(Settings(data_dir=Path(tmp), database_url=url))
                try:
                    _setup(engine, args.prefill)
                    result = (run if args.mode == "backlog" else run_steady)(
                        engine, pg, args.messages, args.batch
                    )
                finally:
                    engine.dispose()
                if pg is None and not args.skip_raw and args.mode == "steady":
                    raw_path = Path(tmp) / "raw.db"
                    raw_engine = make_engine(
                        Settings(data_dir=Path(tmp), database_url=f"sqlite:///{raw_path}")
                    )
                    try:
                        _setup(raw_engine, args.prefill)
                    finally:
                        raw_engine.dispose()
                    result |= run_raw_sqlite(raw_path, args.messages, args.batch)
                if pg is not None and url is not None:
                    pg.drop_database(url.rsplit("/", 1)[1])
            results.append(result)
            print(f"run {n + 1}: " + "  ".join(f"{k} {v:.3f}" for k, v in result.items()))
    print(
        f"median of {len(results)} ({args.db}, ms CPU per message; commits per message): "
        + "  ".join(f"{k} {statistics.median(r[k] for r in results):.3f}" for k in results[0])
    )


if __name__ == "__main__":
    main()
