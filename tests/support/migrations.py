"""Migration tests: a database brought to one Alembic revision, and moved up or down."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from s3dest.settings import Settings
from s3dest.store.engine import MIGRATIONS, make_engine


def alembic(engine: Engine, *, up: str | None = None, down: str | None = None) -> None:
    """Upgrade to `up` and/or downgrade to `down`, as Alembic's own commands do."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        if up:
            command.upgrade(config, up)
        if down:
            command.downgrade(config, down)
        conn.commit()


@contextmanager
def database_at(revision: str, data_dir: Path, database_url: str | None) -> Iterator[Engine]:
    """A new database (SQLite in `data_dir`, or `database_url`) at `revision`."""
    engine = make_engine(Settings(data_dir=data_dir, database_url=database_url))
    try:
        alembic(engine, up=revision)
        yield engine
    finally:
        engine.dispose()
