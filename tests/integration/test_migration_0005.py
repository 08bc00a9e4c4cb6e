"""Revision 0005 (SPEC §8 columns) on a database that already holds destinations, on
SQLite and PostgreSQL: existing rows keep their keys and get none of the options, the
key columns accept NULL for role destinations, and the downgrade goes back."""

from __future__ import annotations

import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

from s3dest.settings import Settings
from s3dest.store.destinations import get_destination_by_id
from s3dest.store.engine import MIGRATIONS, make_engine, schema_revision


def _alembic(engine: Engine, *, up: str | None = None, down: str | None = None) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        if up:
            command.upgrade(config, up)
        if down:
            command.downgrade(config, down)
        conn.commit()


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
        _alembic(engine, up="0004")
        _insert_0004_destination(engine)
        _alembic(engine, up="0005")
        assert schema_revision(engine) == "0005"
        row = get_destination_by_id(engine, "d1")
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
        role_row = get_destination_by_id(engine, "d1")
        assert role_row is not None and role_row.tags == {"team": "data"}
        _alembic(engine, down="0004")
        assert schema_revision(engine) == "0004"
        with engine.connect() as conn:  # role destinations have no keys to go back to
            assert conn.execute(text("SELECT count(*) FROM destinations")).scalar_one() == 0
    finally:
        engine.dispose()
