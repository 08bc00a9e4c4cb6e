"""A throwaway PostgreSQL cluster for tests and benchmarks.

``initdb`` + ``pg_ctl start`` on a free port of 127.0.0.1 (TCP only, trust auth, durability
off for speed) in a temporary directory owned by the ``postgres`` OS user, because PostgreSQL
refuses to run as root: when this process is root every server binary runs through
``runuser -u postgres --``; otherwise it runs as the current user.

    with running_postgres() as pg:
        url = pg.create_database()          # postgresql+psycopg://postgres@127.0.0.1:PORT/db
        pg.restart(mode="immediate")        # same port and data directory (a crash + recovery)

Binaries come from ``$S3DEST_PG_BIN`` or /usr/lib/postgresql/15/bin.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "PG_BIN",
    "PostgresCluster",
    "PostgresUnavailableError",
    "postgres_available",
    "running_postgres",
    "start_postgres",
]

PG_BIN = Path(os.environ.get("S3DEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
SUPERUSER = "postgres"

# Speed over durability against *OS* crashes only: fsync is off (the page cache survives a
# server process crash), but synchronous_commit stays on, so a committed transaction survives
# `restart(mode="immediate")` like it survives a real server crash. (With synchronous_commit off
# an immediate stop loses the last ~0.6 s of acknowledged commits, which would make durability
# tests lie.) max_connections is generous because multi-worker tests open several pools.
_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "64MB",
    "max_wal_size": "1GB",
    "checkpoint_timeout": "30min",
    "log_min_messages": "warning",
    "log_min_error_statement": "panic",
    "log_connections": "off",
    "log_disconnections": "off",
    "timezone": "'UTC'",
}


class PostgresUnavailableError(RuntimeError):
    """The PostgreSQL server binaries are not installed."""


def postgres_available() -> bool:
    return (PG_BIN / "initdb").is_file() and (PG_BIN / "pg_ctl").is_file()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", SUPERUSER, "--", *argv]
    return argv


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class PostgresCluster:
    """A running throwaway cluster. All URLs connect as the ``postgres`` superuser over TCP."""

    base_dir: Path
    port: int
    host: str = "127.0.0.1"
    user: str = SUPERUSER
    _running: bool = field(default=False, repr=False)

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def log_path(self) -> Path:
        return self.base_dir / "postgres.log"

    def url(self, dbname: str = "postgres") -> str:
        """SQLAlchemy URL (psycopg 3 driver) for `dbname`."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{dbname}"

    def conninfo(self, dbname: str = "postgres") -> str:
        """libpq connection string for psycopg.connect()."""
        return f"host={self.host} port={self.port} user={self.user} dbname={dbname}"

    # -- lifecycle -------------------------------------------------------------------------

    def _run(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            _as_server_user([str(PG_BIN / argv[0]), *argv[1:]]),
            cwd=self.base_dir,  # the server user may not be able to enter our cwd
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{argv[0]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}\n"
                f"{self.log_tail()}"
            )
        return result

    def log_tail(self, limit: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return ""

    def start(self) -> None:
        """Start the server on `port` and wait until it accepts connections."""
        self._run(
            "pg_ctl",
            "start",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_path),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {self.port}",
            timeout=90,
        )
        self._running = True

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` (clean) or ``immediate`` (like a crash; recovery on start)."""
        if not self._running:
            return
        self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", mode, "-w", "-t", "60")
        self._running = False

    def restart(self, mode: str = "fast", downtime: float = 0.0) -> None:
        """Stop (``fast`` or ``immediate``) and start again on the same port and data dir."""
        self.stop(mode)
        if downtime:
            time.sleep(downtime)
        self.start()

    @property
    def running(self) -> bool:
        return self._running

    def destroy(self) -> None:
        """Stop immediately and delete the cluster's files."""
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.base_dir, ignore_errors=True)

    # -- databases -------------------------------------------------------------------------

    def execute(self, sql: str, dbname: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.conninfo(dbname), autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.encode())

    def create_database(self, name: str | None = None) -> str:
        """CREATE a fresh empty database and return its SQLAlchemy URL."""
        name = name or f"t_{uuid.uuid4().hex[:16]}"
        self.execute(f"CREATE DATABASE {_quote_ident(name)}")
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """DROP a database, disconnecting anyone still using it."""
        self.execute(f"DROP DATABASE IF EXISTS {_quote_ident(name)} WITH (FORCE)")


def _initdb(base_dir: Path) -> None:
    data_dir = base_dir / "data"
    result = subprocess.run(
        _as_server_user(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                SUPERUSER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ]
        ),
        cwd=base_dir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"initdb failed:\n{result.stdout}\n{result.stderr}")
    settings = dict(_SETTINGS)
    # The Unix socket goes into the cluster's own directory (the default one may not exist or
    # be writable); clients here always use TCP.
    settings["unix_socket_directories"] = f"'{base_dir}'"
    with open(data_dir / "postgresql.conf", "a", encoding="utf-8") as conf:
        conf.write("\n# s3dest test cluster\n")
        for key, value in settings.items():
            conf.write(f"{key} = {value}\n")


def start_postgres(port: int | None = None) -> PostgresCluster:
    """Create and start a throwaway cluster; the caller must `PostgresCluster.destroy()` it."""
    if not postgres_available():
        raise PostgresUnavailableError(
            f"PostgreSQL server binaries not found in {PG_BIN} "
            "(apt-get install postgresql-15, or set S3DEST_PG_BIN)"
        )
    base_dir = Path(tempfile.mkdtemp(prefix="s3dest-pg-"))
    try:
        if os.geteuid() == 0:
            pw = pwd.getpwnam(SUPERUSER)
            os.chown(base_dir, pw.pw_uid, pw.pw_gid)
        os.chmod(base_dir, 0o700)
        _initdb(base_dir)
        attempts = 1 if port is not None else 3
        last_error: Exception | None = None
        for _ in range(attempts):
            cluster = PostgresCluster(base_dir=base_dir, port=port or _free_port())
            try:
                cluster.start()
                return cluster
            except RuntimeError as exc:  # most likely the port was taken meanwhile
                last_error = exc
        assert last_error is not None
        raise last_error
    except BaseException:
        with contextlib.suppress(Exception):
            subprocess.run(
                _as_server_user(
                    [str(PG_BIN / "pg_ctl"), "stop", "-D", str(base_dir / "data"), "-m", "i"]
                ),
                cwd=base_dir,
                capture_output=True,
                timeout=30,
                check=False,
            )
        shutil.rmtree(base_dir, ignore_errors=True)
        raise


@contextlib.contextmanager
def running_postgres(port: int | None = None) -> Iterator[PostgresCluster]:
    """``with running_postgres() as pg: ...`` — a cluster that is destroyed on exit."""
    cluster = start_postgres(port)
    try:
        yield cluster
    finally:
        cluster.destroy()
