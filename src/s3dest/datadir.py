"""The data directory is private: the directory 0700, every file s3dest keeps in it 0600.

It holds message bodies (CRM contacts, in plain text in the database and its WAL), the
key that decrypts every destination's credentials, the dashboard's signing key and spooled
request bodies. Made private when created and again when found, because a directory from
an older version (or made by hand) is often 0755 with 0644 files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600
# SQLite gives its -wal, -shm and -journal files the mode of the database file, so a 0600
# database is enough for them; they are fixed here too when an older run left them 0644.
_SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if missing and make it 0700; return it.

    Only the directory itself is tightened: parents may be shared (``/var/lib``).
    """
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    _tighten(path, DIR_MODE)
    return path


def private_data_dir(path: Path) -> Path:
    """`private_dir` plus every regular file and subdirectory already directly in it."""
    private_dir(path)
    with contextlib.suppress(FileNotFoundError):
        for entry in path.iterdir():
            if entry.is_symlink():
                continue  # never chmod through a link to somewhere else
            if entry.is_dir():
                _tighten(entry, DIR_MODE)
            elif entry.is_file():
                _tighten(entry, FILE_MODE)
    return path


def private_database_file(path: Path) -> None:
    """Create the SQLite file ``path`` empty with mode 0600 before SQLite opens it.

    SQLite would otherwise create it with the umask's mode (0644 by default), and its WAL
    and shared-memory files after it.
    """
    private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    for suffix in ("", *_SQLITE_COMPANIONS):
        companion = path.with_name(path.name + suffix)
        if companion.exists() and not companion.is_symlink():
            _tighten(companion, FILE_MODE)


def _tighten(path: Path, mode: int) -> None:
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if not current & ~mode:
        return
    try:
        os.chmod(path, mode)
    except PermissionError:
        # Not ours (another user made it): say so instead of refusing to start.
        log.warning(
            "%s is mode %o and s3dest cannot change it; run: chmod %o %s", path, current, mode, path
        )
