"""The database under a benchmark's s3dest (SQLite or a throwaway PostgreSQL): the states
and latencies of its messages, and for PostgreSQL its commits and its server's CPU.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._processes import (
    children_of,
    proc_cpu_seconds,
    proc_tree_cpu_seconds,
)
from tests.support.s3dest_server import S3destEnv


@dataclass
class Database:
    kind: str  # sqlite | postgres
    url: str | None  # None: the embedded SQLite default
    pg: Any = None  # PostgresCluster

    def count_states(self, env: S3destEnv, project_id: str) -> dict[str, int]:
        # One project per run: runs share a PostgreSQL database (--baseline runs several).
        sql = (
            f"SELECT state, count(*) FROM messages WHERE project_id = '{project_id}' GROUP BY state"
        )
        return dict(self._query(env, sql))

    def waiting_states(self, env: S3destEnv, project_id: str) -> dict[str, int]:
        """The project's messages not delivered yet, by state; cheap to poll on PostgreSQL.
        Counting every state groups the whole table: polled four times a second, that query
        was the PostgreSQL server's largest cost in a run (pg_stat_statements: 70 us per
        delivered message of 10,000; the bench's own work, counted as s3dest's). The
        messages not delivered are in the pending-only indexes. (On SQLite the counts run
        in this process, and a batch still being staged is not in `messages` yet: there
        every state is counted.)"""
        if self.kind == "sqlite":
            return self.count_states(env, project_id)
        sql = (
            "SELECT state, count(*) FROM messages WHERE state <> 'delivered' "
            f"AND project_id = '{project_id}' GROUP BY state"
        )
        return dict(self._query(env, sql))

    def latencies(self, env: S3destEnv, since: float) -> list[float]:
        sql = (
            "SELECT delivered_at - accepted_at FROM messages "
            f"WHERE state = 'delivered' AND accepted_at >= {since!r}"
        )
        return [float(r[0]) for r in self._query(env, sql)]

    def _query(self, env: S3destEnv, sql: str) -> list[tuple[Any, ...]]:
        if self.kind == "sqlite":
            path = env.data_dir / "s3dest.db"
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
            try:
                return list(conn.execute(sql))
            finally:
                conn.close()
        import psycopg

        assert self.url is not None
        conninfo = self.url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(conninfo, autocommit=True) as conn:
            return list(conn.execute(sql.encode()).fetchall())

    def commits(self) -> int:
        """PostgreSQL: committed transactions in the database so far (0 on SQLite)."""
        if self.pg is None:
            return 0
        sql = "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        return int(self._query(S3destEnv(Path(".")), sql)[0][0])

    def server_cpu_seconds(self) -> float:
        """PostgreSQL: CPU of the postmaster, its live backends and reaped children."""
        if self.pg is None:
            return 0.0
        postmaster = int((self.pg.data_dir / "postmaster.pid").read_text().split()[0])
        total = proc_tree_cpu_seconds(postmaster)
        for child in children_of(postmaster):
            with contextlib.suppress(OSError):
                total += proc_cpu_seconds(child)
        return total


@contextlib.contextmanager
def databases(kinds: list[str]) -> Iterator[dict[str, Database]]:
    out: dict[str, Database] = {}
    with contextlib.ExitStack() as stack:
        for kind in kinds:
            if kind == "sqlite":
                out[kind] = Database("sqlite", None)
            else:
                from tests.support.postgres import running_postgres

                pg = stack.enter_context(running_postgres())
                out[kind] = Database("postgres", pg.create_database(), pg)
        yield out
