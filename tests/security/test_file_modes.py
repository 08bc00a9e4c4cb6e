"""The data directory is private (SPEC §7 "Files"): the directory 0700, every file 0600.

Issue 13 item 8: `s3dest.db`, `-wal` and `-shm` were 0644 and hold message bodies (CRM
contacts) in plain text. Fails on the planted bugs "the modes left to
the umask" (`datadir.DIR_MODE`/`FILE_MODE` set to 0755/0644: both tests) and "an existing
directory is not tightened" (`datadir._tighten` a no-op: the second test).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx
import pytest

from tests.support.builders import create_destination, message
from tests.support.moto_server import S3Server
from tests.support.polling import wait_for_state
from tests.support.s3dest_server import S3destEnv, serve


def modes(data_dir: Path) -> dict[str, int]:
    """Every entry under `data_dir` (and the directory itself) with its permission bits."""
    found = {".": stat.S_IMODE(data_dir.stat().st_mode)}
    for path in data_dir.rglob("*"):
        found[str(path.relative_to(data_dir))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def assert_private(data_dir: Path) -> None:
    found = modes(data_dir)
    wrong = {
        name: oct(mode)
        for name, mode in found.items()
        if mode != (0o700 if (data_dir / name).is_dir() else 0o600)
    }
    assert not wrong, f"not private: {wrong} (all: { {k: oct(v) for k, v in found.items()} })"


@pytest.fixture
def open_umask() -> object:
    """The usual umask 022, which makes files 0644 unless s3dest asks for less."""
    previous = os.umask(0o022)
    yield None
    os.umask(previous)


def test_a_new_data_directory_is_private(
    s3dest_env: S3destEnv,
    tmp_path: Path,
    open_umask: object,
    s3_server: S3Server,
    bucket: str,
) -> None:
    _, api_key = s3dest_env.create_project("files")
    server = serve(s3dest_env, tmp_path)
    try:
        with server.client(api_key) as client:
            create_destination(client, s3_server, bucket, "d")
            # A body above the inline threshold goes through the spool directory.
            big = message(1, pad=5 * 1024 * 1024)
            event_id = client.send(big)["eventId"]
            wait_for_state(client, event_id, "delivered", 120)
            # The dashboard's signing key is made on first use.
            httpx.get(f"{server.url}/signin", timeout=60)
        names = set(modes(s3dest_env.data_dir))
        if s3dest_env.database_url is None:
            assert {"s3dest.db", "s3dest.db-wal", "s3dest.db-shm"} <= names, names
        assert {"secret.key", "tmp"} <= names, names
        assert_private(s3dest_env.data_dir)
    finally:
        server.kill()


def test_an_existing_open_data_directory_is_made_private(
    s3dest_env: S3destEnv, tmp_path: Path, open_umask: object
) -> None:
    """A directory an older version left 0755 with 0644 files is tightened at start."""
    s3dest_env.create_project("files")
    serve(s3dest_env, tmp_path).kill()  # makes every file a server makes, on both databases
    data_dir = s3dest_env.data_dir
    assert (data_dir / "secret.key").exists()
    os.chmod(data_dir, 0o755)
    for path in data_dir.rglob("*"):
        if path.is_file():
            os.chmod(path, 0o644)
    (data_dir / "tmp").mkdir(mode=0o755, exist_ok=True)
    os.chmod(data_dir / "tmp", 0o755)
    assert modes(data_dir)["."] == 0o755
    server = serve(s3dest_env, tmp_path)
    try:
        assert_private(data_dir)
    finally:
        server.kill()
