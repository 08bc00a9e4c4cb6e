"""Retention (issue 16): the database's size over a long run at a steady rate, with a short
S3DEST_RETAIN_DELIVERED, on SQLite and PostgreSQL.

    python -m bench.retention [--db sqlite|postgres|both] [--seconds 240] [--rate 100]
                              [--retain 30s] [--pad 2000] [--sample 20]

Starts moto and `s3dest serve`, sends `--rate` messages a second of about `--pad` bytes
each for `--seconds`, and every `--sample` seconds prints the messages sent so far, the
delivered records kept, the messages not delivered yet (a backlog when S3 is slower than
the rate), and the size on disk: the SQLite file plus its WAL, or PostgreSQL's
`pg_database_size`. With retention working, the delivered records level off at about
rate × (retention + the pruning interval, retention/4 up to a minute) and the size stops
growing once the first window has passed; without it, both grow with every message (the
"bodies sent" column is about what a database keeping every body would hold).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import create_engine, func, select, text
from tests.support.builders import create_destination, message
from tests.support.s3dest_server import S3destEnv, serve

from s3dest.client import Client
from s3dest.devtools.moto import start_moto_server
from s3dest.settings import Settings, parse_duration
from s3dest.store.tables import messages


@contextlib.contextmanager
def database(kind: str) -> Iterator[str | None]:
    if kind == "sqlite":
        yield None
        return
    from tests.support.postgres import running_postgres

    with running_postgres() as pg:
        yield pg.create_database()


def _mib(n: float) -> str:
    return f"{n / 2**20:8.1f}"


def run(kind: str, seconds: float, rate: int, retain: str, pad: int, sample: float) -> None:
    s3 = start_moto_server()
    try:
        bucket = s3.create_bucket()
        with (
            tempfile.TemporaryDirectory(prefix="s3dest-retention-") as tmp,
            database(kind) as url,
        ):
            env = S3destEnv(
                data_dir=Path(tmp) / "data",
                database_url=url,
                extra={
                    "S3DEST_LOG_LEVEL": "WARNING",
                    "S3DEST_SECRET_KEY": "",
                    "S3DEST_RETAIN_DELIVERED": retain,
                },
            )
            _, key = env.create_project("retention")
            server = serve(env, Path(tmp))
            engine = create_engine(Settings(data_dir=env.data_dir, database_url=url).sqlalchemy_url)

            def size() -> str:
                """MiB on disk: SQLite's file + its WAL, or PostgreSQL's database."""
                if url is None:
                    db, wal = (env.data_dir / "s3dest.db", env.data_dir / "s3dest.db-wal")
                    main = db.stat().st_size if db.exists() else 0
                    log = wal.stat().st_size if wal.exists() else 0
                    return f"{_mib(main + log)} ({(main / 2**20):.1f} + {(log / 2**20):.1f})"
                with engine.connect() as conn:
                    found = conn.execute(text("SELECT pg_database_size(current_database())"))
                    return _mib(float(found.scalar() or 0))

            def rows() -> tuple[int, int]:
                """(delivered records kept, messages not delivered yet)"""
                with engine.connect() as conn:
                    by_state: dict[str, int] = dict(
                        conn.execute(
                            select(messages.c.state, func.count()).group_by(messages.c.state)
                        ).all()
                    )
                delivered = int(by_state.pop("delivered", 0))
                return delivered, int(sum(by_state.values()))

            try:
                with Client(server.url, key) as client:
                    create_destination(client, s3, bucket, creds=s3.admin_credentials)
                    print(
                        f"\n== {kind}: {rate} msg/s of ~{pad} B for {seconds:.0f} s, "
                        f"S3DEST_RETAIN_DELIVERED={retain} ({parse_duration(retain):.0f} s) =="
                    )
                    print(
                        "    t (s)      sent  delivered kept  backlog  size MiB (SQLite: db + WAL)"
                        "  bodies sent (MiB)  load"
                    )
                    began = time.monotonic()
                    next_sample = began
                    sent = 0
                    while True:
                        now = time.monotonic()
                        if now >= next_sample:
                            kept, backlog = rows()
                            print(
                                f"{now - began:9.0f} {sent:9d} {kept:15d} {backlog:8d}"
                                f"    {size()}      {_mib(sent * pad)}"
                                f"  {os.getloadavg()[0]:.1f}",
                                flush=True,
                            )
                            next_sample += sample
                        if now - began >= seconds:
                            break
                        due = int((now - began) * rate) - sent
                        if due > 0:
                            batch = [message(sent + i, pad=pad) for i in range(min(due, 500))]
                            client.send_batch(batch)
                            sent += len(batch)
                        else:
                            time.sleep(0.05)
            finally:
                engine.dispose()
                server.kill()
    finally:
        s3.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--seconds", type=float, default=240)
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--retain", default="30s")
    parser.add_argument("--pad", type=int, default=2000)
    parser.add_argument("--sample", type=float, default=20)
    args = parser.parse_args()
    kinds = ("sqlite", "postgres") if args.db == "both" else (args.db,)
    for kind in kinds:
        run(kind, args.seconds, args.rate, args.retain, args.pad, args.sample)


if __name__ == "__main__":
    main()
