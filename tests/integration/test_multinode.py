"""Multi-node on PostgreSQL: one API process (`serve --no-workers`) and three `s3dest worker`
processes on one database. One worker is killed (-9) while it holds leased messages; every
message is still delivered, and no message was ever PUT by two workers at once — proven
from the delivery_attempts table (one row per PUT attempt: worker, started_at, finished_at).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select
from tests.support.builders import create_destination, message, send_in_batches
from tests.support.checks import assert_all_delivered
from tests.support.moto_server import S3Server
from tests.support.polling import wait_queue_empty
from tests.support.s3dest_server import S3destEnv, S3destProcess, serve, worker

from s3dest.settings import Settings
from s3dest.store.tables import attempts, messages


@pytest.mark.timeout(900)
def test_three_workers_one_killed_every_message_delivered_once_at_a_time(
    tmp_path: Path, pg_database_url: str, s3_server: S3Server, bucket: str
) -> None:
    env = S3destEnv(
        data_dir=tmp_path / "data",
        database_url=pg_database_url,
        extra={"S3DEST_SECRET_KEY": "", "S3DEST_LEASE_SECONDS": "5"},
    )
    _, api_key = env.create_project("multi")
    engine = create_engine(Settings(database_url=pg_database_url).sqlalchemy_url)
    processes: list[S3destProcess] = []
    try:
        api = serve(env, tmp_path, "--no-workers")
        processes.append(api)
        with api.client(api_key) as client:
            create_destination(client, s3_server, bucket)
        workers = [worker(env, tmp_path, f"worker-{i}") for i in range(3)]
        processes += workers
        victim = workers[0]
        assert victim.proc is not None
        victim_owner = f"%:{victim.proc.pid}:%"

        def victim_leases() -> list[str]:
            """What the victim holds now, once it has delivered some (else nothing)."""
            with engine.connect() as conn:
                done = conn.execute(
                    select(func.count())
                    .select_from(attempts)
                    .where(attempts.c.worker.like(victim_owner))
                ).scalar_one()
                if not done:
                    return []
                return list(
                    conn.execute(
                        select(messages.c.event_id).where(
                            messages.c.state == "delivering",
                            messages.c.lease_owner.like(victim_owner),
                        )
                    ).scalars()
                )

        with api.client(api_key) as client:
            ids = send_in_batches(client, (message(i) for i in range(300)), size=100)
            # Keep sending while we wait for the victim to be caught holding leases.
            in_flight: list[str] = []
            for start in range(300, 20_000, 100):
                ids += send_in_batches(client, (message(i) for i in range(start, start + 100)))
                in_flight = victim_leases()
                if in_flight:
                    victim.kill()
                    break
            assert in_flight, "the victim worker never held a lease"
            with engine.connect() as conn:
                orphaned = list(
                    conn.execute(
                        select(messages.c.event_id).where(
                            messages.c.state == "delivering",
                            messages.c.lease_owner.like(victim_owner),
                        )
                    ).scalars()
                )
            assert orphaned, "the kill should have left leased messages behind"
            ids += send_in_batches(client, (message(i) for i in range(50_000, 50_500)))

        wait_queue_empty(api, api_key, timeout=600)
        assert_all_delivered(api, api_key, s3_server, bucket, ids)

        with engine.connect() as conn:
            rows = conn.execute(
                select(
                    attempts.c.event_id,
                    attempts.c.worker,
                    attempts.c.started_at,
                    attempts.c.finished_at,
                ).order_by(attempts.c.event_id, attempts.c.started_at)
            ).all()
            still_leased = conn.execute(
                select(func.count())
                .select_from(messages)
                .where(messages.c.lease_owner.is_not(None))
            ).scalar_one()
        assert still_leased == 0

        by_event: dict[str, list[tuple[str, float, float]]] = defaultdict(list)
        for event_id, name, started, finished in rows:
            assert started <= finished
            by_event[event_id].append((name, started, finished))
        overlaps = []
        for event_id, tries in by_event.items():
            for (w1, s1, f1), (w2, s2, f2) in itertools.pairwise(tries):
                if s2 < f1:  # the next attempt began before the previous one ended
                    overlaps.append((event_id, w1, s1, f1, w2, s2, f2))
        assert overlaps == []
        assert set(ids) <= set(by_event)
        # The work was shared by all three, and the victim's orphans were finished by the others.
        assert len({r.worker for r in rows}) == 3
        victim_pid = f":{victim.proc.pid}:"
        for event_id in orphaned:
            assert victim_pid not in by_event[event_id][-1][0]
        survivors = [w for w in workers if w is not victim]
        print(
            f"\n{len(ids)} messages, 3 workers, one killed holding {len(orphaned)} leases; "
            f"{len(rows)} attempts recorded, 0 overlapping; attempts per worker: "
            + ", ".join(
                f"{sum(1 for r in rows if r.worker == n)}" for n in sorted({r.worker for r in rows})
            )
        )
        # Graceful stop of the surviving workers: exit status 0, nothing left leased.
        for w in survivors:
            assert w.terminate(timeout=60) == 0, w.log()[-2000:]
    finally:
        for process in processes:
            process.kill()
        engine.dispose()
