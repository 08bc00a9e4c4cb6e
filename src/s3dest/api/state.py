"""What the API shares between requests: engine, settings, secret box, ingestor."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from s3dest.destinations.secrets import SecretBox
from s3dest.ingest.service import Ingestor
from s3dest.settings import Settings


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    box: SecretBox
    ingestor: Ingestor
    wake_workers: Callable[[], None] = field(default=lambda: None)
