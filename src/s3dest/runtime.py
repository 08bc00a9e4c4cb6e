"""The composition root: what a process opens from its Settings, and how it is wired.

`open_state` gives a serving process its `AppState` (the database, migrated; the secret
box; the ingestor; the throttle of failed authentication); `attach_workers` adds the
delivery worker of `s3dest serve`, woken by every accepted message. The API, the dashboard,
the CLI and the demo all start here, and nothing below them imports this module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from s3dest.access.throttle import AuthThrottle
from s3dest.datadir import private_data_dir
from s3dest.destinations.secrets import SecretBox
from s3dest.fairshare import FairShare
from s3dest.s3 import credentials, egress, lookups
from s3dest.settings import Settings
from s3dest.store.engine import make_engine, upgrade

if TYPE_CHECKING:
    from s3dest.delivery.runner import WorkerThread
    from s3dest.ingest.processes import IngestProcesses
    from s3dest.ingest.service import Ingestor


@dataclass
class AppState:
    """What the API and the dashboard share between requests."""

    settings: Settings
    engine: Engine
    box: SecretBox
    ingestor: Ingestor
    # Bounds and threads shared fairly between projects (SPEC §7 "Fair share").
    fair: FairShare
    #: failed authentications per client address (API keys and the sign-in form)
    throttle: AuthThrottle
    #: where ingest bodies are checked and stored: large ones in worker processes
    ingest_processes: IngestProcesses
    wake_workers: Callable[[], None] = field(default=lambda: None)


def open_engine(settings: Settings, *, migrate: bool = True) -> Engine:
    engine = make_engine(settings)
    if migrate:
        upgrade(engine)
    return engine


def open_box(settings: Settings) -> SecretBox:
    # Also on PostgreSQL: the key file and the dashboard's key live in the data directory.
    private_data_dir(settings.data_dir)
    return SecretBox.from_settings(settings.data_dir, settings.secret_key)


def configure_egress(settings: Settings) -> None:
    """Install the endpoint policy (SPEC §7) with the operator's allow-list; a bad entry
    in S3DEST_ALLOWED_ENDPOINT_HOSTS stops the process here, naming it."""
    egress.configure(egress.EgressPolicy.from_setting(settings.allowed_endpoint_hosts))
    lookups.configure(settings)  # save-time DNS lookups: their threads, bounds and timeout
    # STS for role destinations: also operator-only settings, installed with the policy.
    configure_sts(settings)


def configure_sts(settings: Settings) -> None:
    """The operator's STS settings (endpoint, session length, renewal) for role
    credentials."""
    credentials.configure(
        credentials.StsConfig(
            endpoint_url=settings.sts_endpoint_url,
            session_seconds=settings.role_session_seconds,
            refresh_before_seconds=settings.role_refresh_before_seconds,
        )
    )


def open_state(settings: Settings) -> AppState:
    # Imported here: CLI commands that only need the engine skip pydantic models and httpx.
    from s3dest.ingest.processes import IngestProcesses
    from s3dest.ingest.service import Ingestor

    configure_egress(settings)
    engine = open_engine(settings)
    ingestor = Ingestor(engine)
    return AppState(
        settings=settings,
        engine=engine,
        box=open_box(settings),
        ingestor=ingestor,
        ingest_processes=IngestProcesses(ingestor, settings),
        fair=FairShare(settings),
        throttle=AuthThrottle(
            limit=settings.auth_failure_limit, window=settings.auth_failure_window_seconds
        ),
    )


def attach_workers(state: AppState) -> WorkerThread:
    """A worker thread for this process (not started), woken by what the state accepts."""
    from s3dest.delivery.runner import WorkerThread

    runner = WorkerThread(state.engine, state.settings, state.box)
    state.wake_workers = runner.wake
    state.ingestor.on_accept = runner.wake
    return runner
