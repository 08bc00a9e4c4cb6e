"""Projects (tenants) and their API keys. Keys are stored as SHA-256 hashes only.

A project's keys are created, listed and revoked here. Revoking a key deletes its dashboard
sessions in the same transaction, and a project's last live key cannot be revoked (the
project would be locked out for good): the project's row is locked first, so two revocations
at once cannot both pass that check.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from s3dest.errors import Conflict, InvalidInput, NotFound
from s3dest.messages import uuid7
from s3dest.store.engine import TRY_ONCE, reading, transaction
from s3dest.store.tables import api_keys, dashboard_sessions, projects

KEY_PREFIX = "s3d_"
PREFIX_CHARS = 8  # what is kept (and shown) of a key: "s3d_" and four random characters
DEFAULT_KEY_NAME = "default"
MAX_NAME_CHARS = 100
#: lastUsedAt is written at most this often per key: authentication is not a write per request.
TOUCH_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Project:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class NewProject:
    project: Project
    api_key: str  # shown once; only its hash is stored


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """What may be shown of a key: never the key or its hash."""

    id: str
    project_id: str
    name: str
    prefix: str
    created_at: float
    last_used_at: float | None


@dataclass(frozen=True, slots=True)
class NewApiKey:
    info: ApiKeyInfo
    api_key: str  # shown once


@dataclass(frozen=True, slots=True)
class KeyAuth:
    """A live key, as authentication found it."""

    project: Project
    key_id: str
    prefix: str
    last_used_at: float | None


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_prefix(text: str) -> str | None:
    """What a log line may say of a presented key: its prefix, when it looks like one of ours
    (anything else might be a password pasted into the wrong field)."""
    return text[:PREFIX_CHARS] if text.startswith(KEY_PREFIX) else None


def check_key_name(name: str | None) -> str:
    """A key's name, stripped; InvalidInput naming `name` otherwise."""
    text = (name or "").strip()
    if not text:
        raise InvalidInput(
            "a key needs a name", {"name": "required: say what the key is for, e.g. 'ci'"}
        )
    if len(text) > MAX_NAME_CHARS or any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise InvalidInput(
            "invalid key name",
            {"name": f"at most {MAX_NAME_CHARS} characters, no control characters"},
        )
    return text


def _insert_key(conn: Connection, project_id: str, name: str, now: float) -> NewApiKey:
    key = new_api_key()
    info = ApiKeyInfo(
        id=uuid7(),
        project_id=project_id,
        name=name,
        prefix=key[:PREFIX_CHARS],
        created_at=now,
        last_used_at=None,
    )
    conn.execute(
        insert(api_keys).values(
            id=info.id,
            project_id=project_id,
            key_hash=hash_key(key),
            prefix=info.prefix,
            name=name,
            created_at=now,
        )
    )
    return NewApiKey(info=info, api_key=key)


MAX_PROJECT_NAME_CHARS = 200


def check_project_name(name: str) -> str:
    """A project's name, stripped; InvalidInput naming `name` otherwise."""
    text = name.strip()
    if (
        not text
        or len(text) > MAX_PROJECT_NAME_CHARS
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)
    ):
        raise InvalidInput(
            "invalid project name",
            {"name": f"1 to {MAX_PROJECT_NAME_CHARS} characters, no control characters"},
        )
    return text


def create_project(engine: Engine, name: str) -> NewProject:
    """A new project with its first API key. Names are unique per server (Conflict)."""
    now = time.time()
    project = Project(id=uuid7(), name=check_project_name(name))
    taken = Conflict(
        f"a project called {project.name!r} exists already: project names are unique on a "
        "server. Choose another name (`s3dest projects list` shows them)"
    )
    try:
        with transaction(engine) as conn:
            found = conn.execute(select(projects.c.id).where(projects.c.name == project.name))
            if found.first() is not None:
                raise taken
            conn.execute(insert(projects).values(id=project.id, name=project.name, created_at=now))
            created = _insert_key(conn, project.id, DEFAULT_KEY_NAME, now)
    except IntegrityError:  # another process took the name between the check and the insert
        raise taken from None
    return NewProject(project=project, api_key=created.api_key)


def create_api_key(engine: Engine, project_id: str, name: str) -> NewApiKey:
    checked = check_key_name(name)
    with transaction(engine) as conn:
        found = conn.execute(select(projects.c.id).where(projects.c.id == project_id)).first()
        if found is None:
            raise NotFound(f"no project {project_id}")
        return _insert_key(conn, project_id, checked, time.time())


def add_api_key(engine: Engine, project_id: str, name: str = DEFAULT_KEY_NAME) -> str:
    """Issue another key (the old `projects add-key`); returns the key."""
    return create_api_key(engine, project_id, name).api_key


_INFO_COLUMNS = (
    api_keys.c.id,
    api_keys.c.project_id,
    api_keys.c.name,
    api_keys.c.prefix,
    api_keys.c.created_at,
    api_keys.c.last_used_at,
)


def list_api_keys(engine: Engine, project_id: str) -> list[ApiKeyInfo]:
    """The project's live keys, oldest first."""
    query = (
        select(*_INFO_COLUMNS)
        .where(api_keys.c.project_id == project_id, api_keys.c.revoked_at.is_(None))
        .order_by(api_keys.c.created_at, api_keys.c.id)
    )
    with transaction(engine) as conn:
        return [ApiKeyInfo(*row) for row in conn.execute(query)]


def revoke_api_key(engine: Engine, project_id: str, key_id: str) -> ApiKeyInfo:
    """Revoke a live key of the project and end its dashboard sessions. NotFound outside the
    project (or when already revoked); Conflict for the project's last live key."""
    with transaction(engine) as conn:
        # Lock the project's row (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises
        # writers) so that two revocations cannot both see "another key is left".
        conn.execute(select(projects.c.id).where(projects.c.id == project_id).with_for_update())
        row = conn.execute(
            select(*_INFO_COLUMNS).where(
                api_keys.c.id == key_id,
                api_keys.c.project_id == project_id,
                api_keys.c.revoked_at.is_(None),
            )
        ).first()
        if row is None:
            raise NotFound(f"no live API key {key_id} in this project")
        live = conn.execute(
            select(func.count())
            .select_from(api_keys)
            .where(api_keys.c.project_id == project_id, api_keys.c.revoked_at.is_(None))
        ).scalar_one()
        if live <= 1:
            raise Conflict(
                "this is the project's last API key: revoking it would lock the project out. "
                "Create another key first (POST /v1/api-keys), then revoke this one"
            )
        conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=time.time()))
        conn.execute(delete(dashboard_sessions).where(dashboard_sessions.c.key_id == key_id))
    return ApiKeyInfo(*row)


def find_api_key(engine: Engine, project_id: str, ref: str) -> ApiKeyInfo:
    """A live key of the project by id, prefix or name (the CLI's `keys revoke REF`);
    NotFound, or InvalidInput when a prefix or name fits several."""
    keys = list_api_keys(engine, project_id)
    for info in keys:
        if info.id == ref:
            return info
    matches = [k for k in keys if ref in (k.prefix, k.name)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise InvalidInput(
            f"{len(matches)} keys are called {ref!r}",
            {"key": "give the key's id (`s3dest projects keys list` shows them)"},
        )
    raise NotFound(f"no live API key {ref!r} in this project")


def list_projects(engine: Engine) -> list[Project]:
    with transaction(engine) as conn:
        rows = conn.execute(select(projects.c.id, projects.c.name).order_by(projects.c.id))
        return [Project(id=r.id, name=r.name) for r in rows]


def authenticate_key(engine: Engine, api_key: str) -> KeyAuth | None:
    """The live (not revoked) key `api_key` is, with its project, or None. The hash
    comparison is constant-time; lastUsedAt is brought up to date at most once a minute."""
    digest = hash_key(api_key)
    query = (
        select(
            api_keys.c.key_hash,
            api_keys.c.id.label("key_id"),
            api_keys.c.prefix,
            api_keys.c.last_used_at,
            projects.c.id,
            projects.c.name,
        )
        .join(projects, projects.c.id == api_keys.c.project_id)
        .where(api_keys.c.key_hash == digest, api_keys.c.revoked_at.is_(None))
    )
    with reading(engine) as conn:
        row = conn.execute(query).first()
    if row is None or not hmac.compare_digest(row.key_hash, digest):
        return None
    now = time.time()
    if row.last_used_at is None or now - row.last_used_at >= TOUCH_SECONDS:
        touch_key(engine, row.key_id, now)
    return KeyAuth(
        project=Project(id=row.id, name=row.name),
        key_id=row.key_id,
        prefix=row.prefix,
        last_used_at=row.last_used_at,
    )


def touch_key(engine: Engine, key_id: str, now: float) -> None:
    """Bring lastUsedAt up to date, unless another transaction holds SQLite's write lock:
    then it is left for a later request (lastUsedAt is to within a minute anyway). An
    authenticated request waited here behind another project's batch commit: the one
    request a minute of every key that wrote this, ~1 s at a time (bench/tenancy.py)."""
    statement = (
        update(api_keys)
        .where(
            api_keys.c.id == key_id,
            (api_keys.c.last_used_at.is_(None)) | (api_keys.c.last_used_at < now - TOUCH_SECONDS),
        )
        .values(last_used_at=now)
    )
    if engine.dialect.name != "sqlite":
        with transaction(engine) as conn:
            conn.execute(statement)
        return
    with engine.connect() as conn:
        conn.execution_options(**{TRY_ONCE: True})
        driver = conn.connection.driver_connection
        assert driver is not None
        (waits,) = driver.execute("PRAGMA busy_timeout").fetchone()
        driver.execute("PRAGMA busy_timeout=0")
        try:
            with conn.begin():
                conn.execute(statement)
        except OperationalError:
            pass  # busy: not now
        finally:
            driver.execute(f"PRAGMA busy_timeout={int(waits)}")


def authenticate(engine: Engine, api_key: str) -> Project | None:
    """The project an API key belongs to, or None."""
    found = authenticate_key(engine, api_key)
    return None if found is None else found.project
