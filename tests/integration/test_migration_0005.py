"""Revision 0005 (SPEC §8 columns) on a database that already holds destinations, on
SQLite and PostgreSQL: existing rows keep their keys and get none of the options, the
key columns accept NULL for role destinations, and the downgrade goes back."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text
from tests.support.migrations import alembic

from s3dest.settings import Settings
from s3dest.store.engine import make_engine, schema_revision


def _destination(engine: Engine) -> Any:
    """Row d1 as revision 0005 has it (the store's own reads need the newest columns)."""
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT access_key_id, secret_access_key_enc, role_arn, external_id,"
                " server_side_encryption, acl, tags, bucket_key_enabled FROM destinations"
                " WHERE id = 'd1'"
            )
        ).first()


def _insert_0004_destination(engine: Engine) -> None:
    now = time.time()
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO projects (id, name, created_at) VALUES ('p1', 'p', :now)"),
            {"now": now},
        )
        conn.execute(
            text(
                "INSERT INTO destinations (id, project_id, name, bucket, region, access_key_id,"
                " secret_access_key_enc, storage_class, write_mode, enabled, probe_attempts,"
                " version, created_at, updated_at) VALUES ('d1', 'p1', 'old', 'b', 'us-east-1',"
                " 'AKIAIOSFODNN7EXAMPLE', 'v1:x:y', 'STANDARD', 'overwrite', :t, 0, 1, :now,"
                " :now)"
            ),
            {"now": now, "t": True},
        )


def test_0005_keeps_existing_destinations_and_goes_back(
    database_url: str | None, tmp_path: Path
) -> None:
    engine = make_engine(Settings(data_dir=tmp_path, database_url=database_url))
    try:
        alembic(engine, up="0004")
        _insert_0004_destination(engine)
        alembic(engine, up="0005")
        assert schema_revision(engine) == "0005"
        row = _destination(engine)
        assert row is not None
        assert (row.access_key_id, row.secret_access_key_enc) == ("AKIAIOSFODNN7EXAMPLE", "v1:x:y")
        assert (row.role_arn, row.external_id, row.server_side_encryption, row.acl) == (
            None,
            None,
            None,
            None,
        )
        assert row.tags is None and row.bucket_key_enabled is None
        with engine.begin() as conn:  # a role destination: no keys
            conn.execute(
                text(
                    "UPDATE destinations SET access_key_id = NULL, secret_access_key_enc = NULL,"
                    " role_arn = 'arn:aws:iam::123456789012:role/w', external_id = 's3dest-1',"
                    " tags = '{\"team\": \"data\"}' WHERE id = 'd1'"
                )
            )
        role_row = _destination(engine)
        assert role_row is not None and json.loads(role_row.tags) == {"team": "data"}
        alembic(engine, down="0004")
        assert schema_revision(engine) == "0004"
        with engine.connect() as conn:  # role destinations have no keys to go back to
            assert conn.execute(text("SELECT count(*) FROM destinations")).scalar_one() == 0
    finally:
        engine.dispose()
