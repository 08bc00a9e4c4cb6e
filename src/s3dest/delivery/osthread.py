"""Name the calling thread for the operating system, so `top -H` and /proc show which of
s3dest's threads spend the CPU (Python 3.11 names threads for Python only)."""

from __future__ import annotations

import ctypes
import sys

_PR_SET_NAME = 15
_libc: ctypes.CDLL | None = None


def name_os_thread(name: str) -> None:
    """Best effort: Linux keeps the first 15 bytes; elsewhere this does nothing."""
    global _libc
    if not sys.platform.startswith("linux"):
        return
    try:
        if _libc is None:
            _libc = ctypes.CDLL(None)
        _libc.prctl(_PR_SET_NAME, name.encode()[:15], 0, 0, 0)
    except (OSError, AttributeError):  # no prctl in this libc
        pass
