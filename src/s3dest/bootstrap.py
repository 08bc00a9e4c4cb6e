"""Open everything a process needs from Settings: database (migrated), secret box."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Engine

from s3dest.destinations.secrets import SecretBox
from s3dest.settings import Settings
from s3dest.store.engine import make_engine, upgrade

if TYPE_CHECKING:
    from s3dest.api.state import AppState


def open_engine(settings: Settings, *, migrate: bool = True) -> Engine:
    engine = make_engine(settings)
    if migrate:
        upgrade(engine)
    return engine


def open_box(settings: Settings) -> SecretBox:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SecretBox.from_settings(settings.data_dir, settings.secret_key)


def open_state(settings: Settings) -> AppState:
    # Imported here: CLI commands that only need the engine skip pydantic models and httpx.
    from s3dest.api.state import AppState
    from s3dest.ingest.service import Ingestor

    engine = open_engine(settings)
    return AppState(
        settings=settings, engine=engine, box=open_box(settings), ingestor=Ingestor(engine)
    )
