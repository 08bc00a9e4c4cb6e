"""What a test needs from the machine: skipped on a developer's machine without it, a
failure under CI (``CI`` set), where a skipped test would hide that it never ran."""

from __future__ import annotations

import os

import pytest


def under_ci() -> bool:
    return bool(os.environ.get("CI"))


def require(available: bool, reason: str) -> None:
    """Go on if `available`; else fail under CI and skip elsewhere."""
    if available:
        return
    if under_ci():
        pytest.fail(f"{reason}; under CI (CI is set) this is a failure, not a skip")
    # Justified skip: a developer machine without the service (PostgreSQL binaries, Ceph,
    # root for a tmpfs) can still run the rest; CI, which installs everything, fails above.
    pytest.skip(reason)


def require_root(what: str) -> None:
    require(os.geteuid() == 0, f"{what} needs root (CI runs as root)")
