"""Retention against a real `s3dest serve` (SPEC §4), on SQLite and PostgreSQL: with a
short S3DEST_RETAIN_DELIVERED, delivered messages' records (and their attempts) go away
by themselves, held and parked ones stay, and on SQLite the database files shrink back
to the size of what is left."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, func, select
from tests.support.builders import create_destination, message, send_in_batches
from tests.support.checks import bucket_keys
from tests.support.moto_server import S3Server
from tests.support.polling import wait_for_state, wait_until
from tests.support.s3dest_server import S3destEnv, serve

from s3dest.settings import Settings
from s3dest.store.tables import attempts, messages

# SQLite's files must shrink back: 60 messages of ~40 KB (~2.4 MB). PostgreSQL keeps its
# files (autovacuum makes the space reusable), so there a few small messages show pruning.
SIZES = {"sqlite": (60, 40_000), "postgres": (10, 200)}


def _rows(env: S3destEnv) -> tuple[int, int]:
    settings = Settings(data_dir=env.data_dir, database_url=env.database_url)
    engine = create_engine(settings.sqlalchemy_url)
    try:
        with engine.connect() as conn:
            return (
                conn.execute(select(func.count()).select_from(messages)).scalar_one(),
                conn.execute(select(func.count()).select_from(attempts)).scalar_one(),
            )
    finally:
        engine.dispose()


def test_delivered_records_are_pruned_held_and_parked_stay(
    s3dest_env: S3destEnv,
    project: tuple[str, str],
    tmp_path: Path,
    s3_server: S3Server,
    bucket: str,
) -> None:
    s3dest_env.extra.update({"S3DEST_RETAIN_DELIVERED": "1s", "S3DEST_PROBE_BASE_SECONDS": "30"})
    server = serve(s3dest_env, tmp_path)
    _, api_key = project
    try:
        with server.client(api_key) as client:
            create_destination(
                client,
                s3_server,
                bucket,
                creds=s3_server.admin_credentials,
                keyTemplate="join('/', [data.groupRef, metadata.\"event-id\"])",
            )
            creds = s3_server.admin_credentials
            create_destination(
                client,
                s3_server,
                bucket,
                "broken",
                creds=creds,
                secretAccessKey=creds.secret_access_key[:-4] + "AAAA",
            )
            without_group = message(0)
            del without_group["groupRef"]
            parked = client.send(without_group)["eventId"]
            held = client.send(message(1, "broken"))["eventId"]
            count, pad = SIZES["sqlite" if s3dest_env.database_url is None else "postgres"]
            ids = send_in_batches(client, (message(i, pad=pad) for i in range(count)), size=20)

            wait_for_state(client, parked, "parked", 60)
            wait_for_state(client, held, "held", 60)
            # Delivered (every object is in the bucket), then pruned: the record is gone.
            wait_until(lambda: len(bucket_keys(s3_server, bucket)) == count, 60, "every object")

            def pruned() -> bool:
                return all(
                    client._http.get(f"/v1/messages/{e}").status_code == 404 for e in ids[-5:]
                )

            wait_until(pruned, 60, "delivered records pruned")
            wait_until(lambda: _rows(s3dest_env)[0] == 2, 60, "only the held and parked left")
            assert client.message(parked)["state"] == "parked"
            assert client.message(held)["state"] in ("held", "queued", "delivering")
            # Their attempts stay with them; the pruned messages' went.
            assert 2 <= _rows(s3dest_env)[1] <= 10
            if s3dest_env.database_url is None:
                files = list(s3dest_env.data_dir.glob("s3dest.db*"))

                def on_disk() -> int:
                    return sum(p.stat().st_size for p in files if p.exists())

                # ~2.4 MB went through; without giving pages back the file and the WAL
                # each stayed at least that large.
                wait_until(lambda: on_disk() < 1_000_000, 60, "the files to shrink")
    finally:
        server.kill()
    assert "pruned delivered records" in server.log()
