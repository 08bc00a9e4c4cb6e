"""A missing prerequisite is a skip on a developer's machine and a failure under CI."""

from __future__ import annotations

import os

import pytest
from _pytest.outcomes import Failed, Skipped
from tests.support.requirements import require, require_root


def test_missing_prerequisite_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """Catches the planted bug: the full-disk and read-only tests skipping when not root even
    under CI (they called pytest.skip directly)."""
    monkeypatch.setenv("CI", "1")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(Failed, match="mounting a tmpfs needs root"):
        require_root("mounting a tmpfs")
    with pytest.raises(Failed, match="not a skip"):
        require(False, "PostgreSQL 15 is not installed")


def test_missing_prerequisite_skips_on_a_developer_machine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(Skipped, match="needs root"):
        require_root("mounting a tmpfs")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    require_root("mounting a tmpfs")  # as root: nothing happens
    require(True, "present")
