"""What s3dest's own database says, read directly (no API): how many messages are in each
state and how many are leased. Used to prove that a kill or a SIGTERM met work in flight,
which the API cannot show once the server is gone."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import create_engine, func, select

from s3dest.settings import Settings
from s3dest.store.tables import messages
from tests.support.s3dest_server import S3destEnv


@dataclass(frozen=True)
class StateCounts:
    by_state: dict[str, int] = field(default_factory=dict)
    leased: int = 0  # rows with a lease owner: claimed by a worker, PUT maybe under way

    @property
    def undelivered(self) -> int:
        """Accepted and not yet delivered (queued, delivering, retrying, held, parked)."""
        return sum(n for state, n in self.by_state.items() if state != "delivered")

    @property
    def in_flight(self) -> int:
        """`delivering` or leased: a worker had taken it."""
        return max(self.by_state.get("delivering", 0), self.leased)


def state_counts(env: S3destEnv) -> StateCounts:
    settings = Settings(data_dir=env.data_dir, database_url=env.database_url)
    engine = create_engine(settings.sqlalchemy_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(messages.c.state, func.count()).group_by(messages.c.state)
            ).all()
            leased = conn.execute(
                select(func.count())
                .select_from(messages)
                .where(messages.c.lease_owner.is_not(None))
            ).scalar_one()
    finally:
        engine.dispose()
    return StateCounts({str(state): int(n) for state, n in rows}, int(leased))
