"""s3dest.access and the store beneath it, on SQLite in a temporary directory: the
throttle's sliding window, the audit log's masking, sessions that expire and end with
their key, the last key that cannot be revoked, lastUsedAt written at most once a minute."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from sqlalchemy import Engine

from s3dest.access import apikeys, audit
from s3dest.access.audit import CLI, Actor
from s3dest.access.throttle import AuthThrottle
from s3dest.errors import Conflict, InvalidInput, NotFound
from s3dest.runtime import open_engine
from s3dest.settings import Settings
from s3dest.store import projects, sessions


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    opened = open_engine(Settings(data_dir=tmp_path))
    yield opened
    opened.dispose()


def test_the_throttle_counts_failures_in_a_sliding_window() -> None:
    clock = [1000.0]
    throttle = AuthThrottle(limit=3, window=10)
    with mock.patch("s3dest.access.throttle.time.monotonic", side_effect=lambda: clock[0]):
        assert [throttle.failed("1.2.3.4").count for _ in range(2)] == [1, 2]
        assert throttle.retry_after("1.2.3.4") is None
        third = throttle.failed("1.2.3.4")
        assert third.count == 3 and third.throttled_now
        assert throttle.retry_after("1.2.3.4") == 10
        assert throttle.retry_after("5.6.7.8") is None  # per address
        throttle.succeeded("digest-of-a-good-key")
        assert throttle.retry_after("1.2.3.4", "digest-of-a-good-key") is None
        clock[0] += 4
        assert throttle.retry_after("1.2.3.4") == 6
        clock[0] += 6.01  # the oldest failure has left the window
        assert throttle.retry_after("1.2.3.4") is None
    assert AuthThrottle(limit=0, window=10).retry_after("1.2.3.4") is None


def test_audit_diff_masks_secrets_and_lists_changed_fields() -> None:
    changes = audit.diff(
        {"bucket": "a", "region": "us-east-1"},
        {"bucket": "b", "region": "us-east-1"},
        secrets_set=["secretAccessKey"],
    )
    assert changes == {
        "bucket": {"from": "a", "to": "b"},
        "secretAccessKey": {"from": "***", "to": "***"},
    }
    created = audit.diff(None, {"bucket": "b", "keyTemplate": None}, secrets_set=["sessionToken"])
    assert created == {"bucket": {"to": "b"}, "sessionToken": {"to": "***"}}


def test_keys_sessions_and_the_audit_log(engine: Engine) -> None:
    made = projects.create_project(engine, "alpha")
    pid = made.project.id
    (first,) = apikeys.list_(engine, project_id=pid)
    with pytest.raises(Conflict, match="last API key"):
        apikeys.revoke(engine, project_id=pid, key_id=first.id, actor=CLI)
    with pytest.raises(InvalidInput) as bad:
        apikeys.create(engine, project_id=pid, name="\x00", actor=CLI)
    assert "name" in bad.value.fields
    second = apikeys.create(engine, project_id=pid, name="ci", actor=Actor.api_key(first.id, "p"))

    sid = sessions.create_session(engine, project_id=pid, key_id=second.info.id, ttl=3600)
    expired = sessions.create_session(engine, project_id=pid, key_id=first.id, ttl=-1)
    assert sessions.find_session(engine, sid) is not None
    assert sessions.find_session(engine, expired) is None
    assert sessions.find_session(engine, sid + "x") is None

    apikeys.revoke(engine, project_id=pid, key_id=second.info.id, actor=CLI)
    assert sessions.find_session(engine, sid) is None  # the key's sessions end with it
    assert projects.authenticate(engine, second.api_key) is None
    with pytest.raises(NotFound):
        apikeys.revoke(engine, project_id=pid, key_id=second.info.id, actor=CLI)

    entries = audit.entries(engine, project_id=pid)
    assert [(e.action, e.actor) for e in entries] == [
        ("apiKey.revoked", "cli"),
        ("apiKey.created", f"key:{first.id}"),
    ]


def test_authentication_does_not_wait_for_another_transactions_write_lock(
    engine: Engine,
) -> None:
    """Found (issue 13, fair share): the once-a-minute lastUsedAt write waited for SQLite's
    write lock, so one request a minute of every key waited out another project's batch
    commit (up to the 30 s busy timeout). Now the touch is skipped while the lock is held,
    and made by a later request."""
    made = projects.create_project(engine, "alpha")
    with engine.connect() as holder:
        holder.begin()  # BEGIN IMMEDIATE: the write lock, as a batch commit holds it
        began = time.monotonic()
        assert projects.authenticate_key(engine, made.api_key) is not None
        assert time.monotonic() - began < 5  # generous: it used to wait 30 s
        holder.rollback()
    assert projects.list_api_keys(engine, made.project.id)[0].last_used_at is None
    assert projects.authenticate_key(engine, made.api_key) is not None
    assert projects.list_api_keys(engine, made.project.id)[0].last_used_at is not None


def test_last_used_is_written_at_most_once_a_minute(engine: Engine) -> None:
    made = projects.create_project(engine, "alpha")
    with mock.patch.object(projects, "touch_key", wraps=projects.touch_key) as touch:
        for _ in range(5):
            assert projects.authenticate_key(engine, made.api_key) is not None
        assert touch.call_count == 1
        later = time.time() + projects.TOUCH_SECONDS + 1
        with mock.patch("s3dest.store.projects.time.time", return_value=later):
            projects.authenticate_key(engine, made.api_key)
        assert touch.call_count == 2
