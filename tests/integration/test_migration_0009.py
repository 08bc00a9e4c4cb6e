"""Revision 0009 (unique project names, issue 15 item 8) on SQLite and PostgreSQL: an older
database that already holds duplicate names upgrades (the oldest keeps its name, later
ones become NAME-2, NAME-3, skipping a name that is taken), every project keeps its id
and keys, and from then on the store refuses a taken name with a Conflict."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from tests.support.migrations import alembic, database_at

from s3dest.errors import Conflict
from s3dest.store.engine import SCHEMA_HEAD, schema_revision, upgrade
from s3dest.store.projects import authenticate, create_project, list_projects

PREVIOUS = "0005"  # the revision 0009 follows


def test_duplicate_names_are_renamed_on_upgrade_and_refused_after(
    database_url: str | None, tmp_path: Path
) -> None:
    with database_at(PREVIOUS, tmp_path, database_url) as engine:
        with engine.begin() as conn:
            for project_id, name, created in [
                ("p1", "acme", 1.0),
                ("p2", "acme", 2.0),
                ("p3", "acme-2", 3.0),  # taken: the second "acme" must skip it
                ("p4", "acme", 4.0),
                ("p5", "beta", 5.0),
            ]:
                conn.execute(
                    text("INSERT INTO projects (id, name, created_at) VALUES (:i, :n, :c)"),
                    {"i": project_id, "n": name, "c": created},
                )
        alembic(engine, up="0009")
        names = {p.id: p.name for p in list_projects(engine)}
        assert names == {
            "p1": "acme",
            "p2": "acme-3",
            "p3": "acme-2",
            "p4": "acme-4",
            "p5": "beta",
        }
        upgrade(engine)  # to whatever is head now
        assert schema_revision(engine) == SCHEMA_HEAD

        made = create_project(engine, "gamma")
        found = authenticate(engine, made.api_key)
        assert found is not None and found.name == "gamma"
        with pytest.raises(Conflict, match="exists already"):
            create_project(engine, "gamma")
        with pytest.raises(Conflict):
            create_project(engine, " acme ")  # names are stripped before the check
        with engine.connect() as conn:  # the index itself refuses what the check would miss
            with pytest.raises(IntegrityError):
                conn.execute(
                    text("INSERT INTO projects (id, name, created_at) VALUES ('x', 'beta', 9)")
                )
            conn.rollback()
        assert sorted(p.name for p in list_projects(engine)).count("gamma") == 1

        alembic(engine, down=PREVIOUS)
        assert schema_revision(engine) == PREVIOUS
