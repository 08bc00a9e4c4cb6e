"""Revision 0010 (`destinations.verified_at`, issue 15 item 3) on SQLite and PostgreSQL: an
older database upgrades with each destination verified by the evidence it still holds (its
latest delivered message, or a passing test of the saved destination in the audit log), so
a destination that has worked keeps saying healthy, and one with no evidence is untested."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import insert, select
from tests.support.migrations import alembic, database_at

from s3dest.store.destinations import list_destinations
from s3dest.store.engine import SCHEMA_HEAD, schema_revision, upgrade
from s3dest.store.tables import audit_log, destinations, messages, projects

PREVIOUS = "0007"  # the revision 0010 follows


def _destination(name: str) -> dict[str, object]:
    return {
        "id": name,
        "project_id": "p",
        "name": name,
        "bucket": "b",
        "region": "us-east-1",
        "access_key_id": "AKIAEXAMPLE",
        "storage_class": "STANDARD",
        "write_mode": "overwrite",
        "enabled": True,
        "probe_attempts": 0,
        "version": 1,
        "created_at": 1.0,
        "updated_at": 1.0,
    }


def _tested(n: int, target: str, changes: dict[str, object]) -> dict[str, object]:
    return {
        "id": f"a{n}",
        "project_id": "p",
        "at": 10.0 + n,
        "actor": "key",
        "action": "destination.tested",
        "target": target,
        "changes": json.dumps(changes),
    }


def test_existing_destinations_are_verified_by_the_evidence_they_hold(
    database_url: str | None, tmp_path: Path
) -> None:
    with database_at(PREVIOUS, tmp_path, database_url) as engine:
        with engine.begin() as conn:
            conn.execute(insert(projects).values(id="p", name="p", created_at=1.0))
            for name in ("delivered", "tested", "draft-only", "failed-test", "nothing"):
                conn.execute(insert(destinations).values(**_destination(name)))
            for n, (state, delivered_at) in enumerate([("delivered", 7.0), ("delivered", 8.0)]):
                conn.execute(
                    insert(messages).values(
                        event_id=f"e{n}",
                        project_id="p",
                        destination_id="delivered",
                        state=state,
                        event_time_ns=1,
                        accepted_at=5.0,
                        body_size=2,
                        next_attempt_at=5.0,
                        updated_at=delivered_at,
                        delivered_at=delivered_at,
                    )
                )
            for row in [
                _tested(1, "destination:tested", {"ok": False}),
                _tested(2, "destination:tested", {"ok": True}),
                _tested(3, "destination:tested", {"ok": True}),
                _tested(4, "destination:draft-only", {"ok": True, "unsaved": True}),
                _tested(5, "destination:failed-test", {"ok": False}),
            ]:
                conn.execute(insert(audit_log).values(**row))
        alembic(engine, up="0010")
        with engine.connect() as conn:
            rows = conn.execute(select(destinations.c.id, destinations.c.verified_at))
            verified = {row.id: row.verified_at for row in rows}
        assert verified == {
            "delivered": 8.0,  # its latest delivery
            "tested": 12.0,  # its first passing test
            "draft-only": None,  # a test of unsaved values proves nothing about it
            "failed-test": None,
            "nothing": None,
        }
        upgrade(engine)
        assert schema_revision(engine) == SCHEMA_HEAD
        statuses = {row.name: row.status for row in list_destinations(engine, "p")}
        assert statuses == {
            "delivered": "healthy",
            "tested": "healthy",
            "draft-only": "untested",
            "failed-test": "untested",
            "nothing": "untested",
        }
        alembic(engine, down=PREVIOUS)  # and back
        assert schema_revision(engine) == PREVIOUS
