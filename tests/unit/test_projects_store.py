"""store/projects: projects and their API keys over a real (SQLite) database — creation,
hashing, authentication, lastUsedAt, revocation and look-up. Authentication was proven only
through running servers, so `make mutate` found no fast test for any of this module's 119
mutants (docs/mutation.md); these pin what each function promises, on SQLite and
PostgreSQL."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select, update

from s3dest.errors import Conflict, InvalidInput, NotFound
from s3dest.settings import Settings
from s3dest.store import projects as store
from s3dest.store.engine import make_engine, transaction, upgrade
from s3dest.store.tables import api_keys, dashboard_sessions


@pytest.fixture
def engine(database_url: str | None, tmp_path: Path) -> Iterator[Engine]:
    # Both databases: touch_key takes another path on each (SQLite skips a busy lock).
    engine = make_engine(Settings(data_dir=tmp_path / "data", database_url=database_url))
    upgrade(engine)
    yield engine
    engine.dispose()


def _key_rows(engine: Engine) -> list[dict[str, object]]:
    with transaction(engine) as conn:
        return [dict(r._mapping) for r in conn.execute(select(api_keys))]


def test_a_new_project_has_one_key_stored_as_its_hash_only(engine: Engine) -> None:
    before = time.time()
    created = store.create_project(engine, "alpha")
    key = created.api_key
    assert key.startswith("s3d_") and len(key) == 4 + 43  # 32 random bytes, url-safe base64
    assert created.project.name == "alpha"
    (row,) = _key_rows(engine)
    assert row["key_hash"] == hashlib.sha256(key.encode()).hexdigest() == store.hash_key(key)
    assert key not in {str(v) for v in row.values()}
    assert row["prefix"] == key[:8] and row["name"] == "default"
    assert row["project_id"] == created.project.id and row["revoked_at"] is None
    (info,) = store.list_api_keys(engine, created.project.id)
    assert info.name == "default" and info.prefix == key[:8] and info.last_used_at is None
    assert before <= info.created_at <= time.time()
    assert store.list_projects(engine) == [created.project]
    assert store.new_api_key() != store.new_api_key()


def test_authentication_finds_the_live_key_and_nothing_else(engine: Engine) -> None:
    alpha = store.create_project(engine, "alpha")
    beta = store.create_project(engine, "beta")
    found = store.authenticate_key(engine, alpha.api_key)
    assert found is not None
    assert found.project == alpha.project and found.prefix == alpha.api_key[:8]
    (info,) = store.list_api_keys(engine, alpha.project.id)
    assert found.key_id == info.id
    assert store.authenticate(engine, beta.api_key) == beta.project
    assert store.authenticate(engine, alpha.api_key + "x") is None
    assert store.authenticate(engine, "") is None
    assert store.authenticate(engine, store.hash_key(alpha.api_key)) is None


def test_last_used_at_is_written_at_most_once_a_minute(engine: Engine) -> None:
    created = store.create_project(engine, "alpha")
    first = store.authenticate_key(engine, created.api_key)
    assert first is not None and first.last_used_at is None  # as it was before this use
    (info,) = store.list_api_keys(engine, created.project.id)
    stamped = info.last_used_at
    assert stamped is not None and stamped <= time.time()
    again = store.authenticate_key(engine, created.api_key)
    assert again is not None and again.last_used_at == stamped
    assert store.list_api_keys(engine, created.project.id)[0].last_used_at == stamped
    # A minute later (TOUCH_SECONDS), the next use is written again.
    old = time.time() - store.TOUCH_SECONDS - 1
    with transaction(engine) as conn:
        conn.execute(update(api_keys).values(last_used_at=old))
    later = store.authenticate_key(engine, created.api_key)
    assert later is not None and later.last_used_at == old
    assert store.list_api_keys(engine, created.project.id)[0].last_used_at > old + 30
    # touch_key itself: within the minute it leaves the stamp alone; past it, it writes
    # that key's stamp and no other key's. (abs=: a relative approx of an epoch time would
    # allow half an hour.)
    other = store.create_api_key(engine, created.project.id, "other").info
    now = time.time()
    recent = now - store.TOUCH_SECONDS + 5
    with transaction(engine) as conn:
        conn.execute(update(api_keys).values(last_used_at=recent))
    store.touch_key(engine, info.id, now)
    stamps = {k.id: k.last_used_at for k in store.list_api_keys(engine, created.project.id)}
    assert stamps == {
        info.id: pytest.approx(recent, abs=1e-3),
        other.id: pytest.approx(recent, abs=1e-3),
    }
    with transaction(engine) as conn:
        conn.execute(update(api_keys).values(last_used_at=now - store.TOUCH_SECONDS - 5))
    store.touch_key(engine, info.id, now)
    stamps = {k.id: k.last_used_at for k in store.list_api_keys(engine, created.project.id)}
    expected = {info.id: now, other.id: now - store.TOUCH_SECONDS - 5}
    assert stamps == {k: pytest.approx(v, abs=1e-3) for k, v in expected.items()}


def test_key_names_are_checked_and_stripped(engine: Engine) -> None:
    project = store.create_project(engine, "alpha").project
    made = store.create_api_key(engine, project.id, "  ci  ")
    assert made.info.name == "ci" and made.api_key.startswith("s3d_")
    assert made.info.project_id == project.id and made.info.prefix == made.api_key[:8]
    assert store.authenticate(engine, made.api_key) == project
    assert store.check_key_name("a b" + "c" * 97) == "a b" + "c" * 97  # 100 characters
    missing = ("a key needs a name", "required: say what the key is for, e.g. 'ci'")
    invalid = ("invalid key name", "at most 100 characters, no control characters")
    for bad, (message, field) in [
        ("", missing),
        ("   ", missing),
        (None, missing),
        ("c" * 101, invalid),
        ("tab\there", invalid),
        ("del\x7f", invalid),
        ("unit\x1fsep", invalid),
    ]:
        with pytest.raises(InvalidInput) as caught:
            store.check_key_name(bad)
        assert caught.value.message == message, bad
        assert caught.value.fields == {"name": field}, bad
    with pytest.raises(NotFound, match="no project nope"):
        store.create_api_key(engine, "nope", "ci")
    assert store.add_api_key(engine, project.id).startswith("s3d_")
    assert [k.name for k in store.list_api_keys(engine, project.id)] == ["default", "ci", "default"]


def test_revoking_ends_the_key_and_its_sessions_but_never_the_last_key(engine: Engine) -> None:
    alpha = store.create_project(engine, "alpha")
    other = store.create_project(engine, "other")
    (first,) = store.list_api_keys(engine, alpha.project.id)
    last_key = (
        "this is the project's last API key: revoking it would lock the project out. "
        "Create another key first (POST /v1/api-keys), then revoke this one"
    )
    with pytest.raises(Conflict) as refused:
        store.revoke_api_key(engine, alpha.project.id, first.id)
    assert refused.value.message == last_key
    assert store.authenticate(engine, alpha.api_key) == alpha.project
    second = store.create_api_key(engine, alpha.project.id, "laptop")
    now = time.time()
    with transaction(engine) as conn:
        conn.execute(
            insert(dashboard_sessions),
            [
                {
                    "id_hash": f"s{i}",
                    "project_id": alpha.project.id,
                    "key_id": key_id,
                    "created_at": now,
                    "expires_at": now + 60,
                }
                for i, key_id in enumerate([second.info.id, first.id])
            ],
        )
    # Another project's key id is not found here, whatever it is.
    (theirs,) = store.list_api_keys(engine, other.project.id)
    with pytest.raises(NotFound):
        store.revoke_api_key(engine, alpha.project.id, theirs.id)
    revoked = store.revoke_api_key(engine, alpha.project.id, second.info.id)
    assert revoked.id == second.info.id and revoked.name == "laptop"
    assert store.authenticate(engine, second.api_key) is None
    assert [k.id for k in store.list_api_keys(engine, alpha.project.id)] == [first.id]
    with transaction(engine) as conn:
        left = [r.key_id for r in conn.execute(select(dashboard_sessions.c.key_id))]
        row = conn.execute(select(api_keys).where(api_keys.c.id == second.info.id)).one()
    assert left == [first.id]
    assert row.revoked_at is not None and row.revoked_at >= now
    with pytest.raises(NotFound, match="no live API key"):
        store.revoke_api_key(engine, alpha.project.id, second.info.id)
    # A revoked key does not count as one left: the live one is still the last.
    with pytest.raises(Conflict):
        store.revoke_api_key(engine, alpha.project.id, first.id)
    assert store.authenticate(engine, other.api_key) == other.project


def test_a_key_is_found_by_id_prefix_or_unique_name(engine: Engine) -> None:
    project = store.create_project(engine, "alpha").project
    (default,) = store.list_api_keys(engine, project.id)
    ci = store.create_api_key(engine, project.id, "ci").info
    assert store.find_api_key(engine, project.id, ci.id) == ci
    assert store.find_api_key(engine, project.id, ci.prefix) == ci
    assert store.find_api_key(engine, project.id, "ci") == ci
    assert store.find_api_key(engine, project.id, "default") == default
    store.create_api_key(engine, project.id, "ci")
    with pytest.raises(InvalidInput, match="2 keys are called 'ci'") as caught:
        store.find_api_key(engine, project.id, "ci")
    assert caught.value.fields == {
        "key": "give the key's id (`s3dest projects keys list` shows them)"
    }
    assert store.find_api_key(engine, project.id, ci.id) == ci  # the id still picks one
    with pytest.raises(NotFound, match="no live API key 'gone'"):
        store.find_api_key(engine, project.id, "gone")


def test_only_our_keys_show_a_prefix() -> None:
    assert store.key_prefix("s3d_abcdefghij") == "s3d_abcd"
    assert store.key_prefix("hunter2-password") is None
    assert store.key_prefix("S3D_abcdefgh") is None


@pytest.mark.parametrize(
    "name",
    ["a", "Acme Data", " Acme ", "x" * 200, "Zürich\u00a0GmbH"],
    ids=["one", "space", "padded", "200", "non-ASCII"],
)
def test_a_project_name_of_1_to_200_characters_is_kept_stripped(name: str) -> None:
    """Spaces inside a name and exactly 200 characters are allowed (mutation testing,
    session 10: `check_project_name` 5, 9, 10 — 200 refused, a space refused — survived)."""
    assert store.check_project_name(name) == name.strip()


@pytest.mark.parametrize(
    "name",
    ["", "   ", "x" * 201, "a\x01b", "a\x1fb", "a\x7fb", "a\nb"],
    ids=["empty", "blank", "201", "U+0001", "U+001F", "DEL", "newline"],
)
def test_a_project_name_empty_too_long_or_with_a_control_character_is_refused(
    name: str,
) -> None:
    """`check_project_name` 2, 7, 13 (control characters let through) and 15 (the field)."""
    with pytest.raises(InvalidInput) as info:
        store.check_project_name(name)
    assert info.value.message == "invalid project name"
    assert info.value.fields == {"name": "1 to 200 characters, no control characters"}


def test_a_project_name_is_unique_on_a_server_and_the_refusal_says_what_to_do(
    engine: Engine,
) -> None:
    """`create_project` 10–12 (the words: no unit test created a name twice)."""
    store.create_project(engine, "alpha")
    for again in ("alpha", "  alpha "):  # stripped first: the same name
        with pytest.raises(Conflict) as refused:
            store.create_project(engine, again)
        assert refused.value.message == (
            "a project called 'alpha' exists already: project names are unique on a server. "
            "Choose another name (`s3dest projects list` shows them)"
        )
    assert [p.name for p in store.list_projects(engine)] == ["alpha"]
