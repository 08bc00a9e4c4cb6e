"""Idempotent ingest across a crash: the answer kept for an `Idempotency-Key` commits in the
transaction that stores the messages, so no moment exists at which the messages are stored
and the answer is not (issue 15, idempotency).

Was: the messages committed, then the answer was saved in a transaction of its own; a
server killed between the two left a claim without an answer, which a retry took over ten
minutes later and stored the messages a second time.

The kill -9 test stops the server at that moment on PostgreSQL: a trigger (the test's, on
the test's database) makes the answer's UPDATE wait on an advisory lock the test holds, the
server is killed while it waits, and the retry after the claim has aged finds the messages
stored once. SQLite has no way to stop a statement half-way from outside, so on both
databases the store-level test shows the one transaction: when saving the answer fails,
the messages are not stored either.
"""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select, text
from tests.support.builders import example_destination_fields, message
from tests.support.polling import wait_until
from tests.support.s3dest_server import S3destEnv, serve

from s3dest.access.audit import CLI
from s3dest.destinations import service
from s3dest.destinations.schemas import parse_create
from s3dest.errors import Conflict
from s3dest.ingest.service import Ingestor
from s3dest.runtime import open_box, open_engine
from s3dest.settings import Settings
from s3dest.store import idempotency
from s3dest.store.projects import create_project
from s3dest.store.tables import idempotency_keys, messages

_LOCK = 715_001  # the advisory lock the trigger waits on

_TRIGGER = f"""
CREATE FUNCTION hold_idempotency_answer() RETURNS trigger AS $$
BEGIN
    PERFORM pg_advisory_lock_shared({_LOCK});
    PERFORM pg_advisory_unlock_shared({_LOCK});
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER hold_idempotency_answer BEFORE UPDATE ON idempotency_keys
    FOR EACH ROW EXECUTE FUNCTION hold_idempotency_answer();
"""


def _stored(engine: Engine, project_id: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(messages)
                .where(messages.c.project_id == project_id)
            ).scalar_one()
        )


@pytest.mark.timeout(300)
def test_kill_9_between_storing_and_answering_stores_nothing_twice(
    tmp_path: Path, pg_database_url: str
) -> None:
    env = S3destEnv(
        data_dir=tmp_path / "data", database_url=pg_database_url, extra={"S3DEST_SECRET_KEY": ""}
    )
    server = serve(env, tmp_path)
    engine = open_engine(Settings(data_dir=tmp_path / "data", database_url=pg_database_url))
    holder = engine.connect()
    try:
        project_id, api_key = env.create_project("crash")
        headers = {"Authorization": f"Bearer {api_key}"}
        made = httpx.post(
            f"{server.url}/v1/destinations",
            json=example_destination_fields("lake", enabled=False),
            headers=headers,
        )
        assert made.status_code == 201, made.text
        with engine.begin() as conn:
            conn.execute(text(_TRIGGER))
        holder.execute(text(f"SELECT pg_advisory_lock({_LOCK})"))
        holder.commit()  # session-level: held until unlocked

        batch = {"messages": [message(i, destination="lake") for i in range(5)]}
        keyed = {**headers, "Idempotency-Key": "upload-1"}
        answers: list[Any] = []

        def send() -> None:
            try:
                answers.append(httpx.post(f"{server.url}/v1/messages", json=batch, headers=keyed))
            except httpx.HTTPError as exc:
                answers.append(exc)

        sender = threading.Thread(target=send)
        sender.start()

        def waiting_on_the_lock() -> bool:
            with engine.connect() as conn:
                return bool(
                    conn.execute(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'advisory'"
                            " AND datname = current_database()"
                        )
                    ).scalar_one()
                )

        wait_until(waiting_on_the_lock, timeout=60, what="the answer's UPDATE never ran")
        # The moment between storing the messages and saving their answer: nothing is
        # stored yet, since both commit together (before the fix: all 5 were).
        at_kill = _stored(engine, project_id)
        server.kill()
        sender.join(30)
        assert answers and not isinstance(answers[0], httpx.Response), answers
        # The dead server's connection goes with it (PostgreSQL aborts its transaction).
        with engine.begin() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    f" AND pid <> {holder.connection.dbapi_connection.info.backend_pid}"  # type: ignore[union-attr]
                )
            )
        holder.execute(text(f"SELECT pg_advisory_unlock({_LOCK})"))
        holder.commit()

        server.start()
        # Within ten minutes a retry is told to wait (the claim may belong to a live request).
        again = httpx.post(f"{server.url}/v1/messages", json=batch, headers=keyed)
        assert again.status_code == 409, again.text
        # Ten minutes later the claim is abandoned and taken over: the messages are stored
        # once, and a further retry replays that answer.
        with engine.begin() as conn:
            conn.execute(
                idempotency_keys.update()
                .where(idempotency_keys.c.project_id == project_id)
                .values(created_at=idempotency_keys.c.created_at - 601)
            )
        retried = httpx.post(f"{server.url}/v1/messages", json=batch, headers=keyed)
        assert retried.status_code == 202, retried.text
        replayed = httpx.post(f"{server.url}/v1/messages", json=batch, headers=keyed)
        assert replayed.status_code == 202, replayed.text
        assert replayed.headers["Idempotent-Replayed"] == "true"
        assert replayed.json() == retried.json()
        # Before the fix: (5, 10), the retry stored every message a second time.
        assert (at_kill, _stored(engine, project_id)) == (0, 5)
    finally:
        holder.close()
        server.kill()
        engine.dispose()


# -- the one transaction, on both databases ------------------------------------------------


@pytest.fixture
def store_engine(tmp_path: Path, database_url: str | None) -> Iterator[Engine]:
    engine = open_engine(Settings(data_dir=tmp_path / "data", database_url=database_url))
    try:
        yield engine
    finally:
        engine.dispose()


def _ingestor_with_destination(engine: Engine, tmp_path: Path) -> tuple[Ingestor, str]:
    project = create_project(engine, f"keys-{uuid.uuid4().hex[:8]}").project
    service.create(
        engine,
        open_box(Settings(data_dir=tmp_path / "data")),
        project_id=project.id,
        body=parse_create(example_destination_fields("lake", enabled=False)),
        actor=CLI,
    )
    return Ingestor(engine, announce=False), project.id


def _answer(engine: Engine, project_id: str) -> bytes | None:
    with engine.connect() as conn:
        found = conn.execute(
            select(idempotency_keys.c.response).where(idempotency_keys.c.project_id == project_id)
        ).scalar_one()
    return bytes(found) if found is not None else None


@pytest.mark.parametrize(
    ("large", "count"),
    [(False, 3), (False, 600), (True, 1)],
    ids=["batch", "staged-batch", "large-message"],
)
def test_the_answer_and_the_messages_commit_in_one_transaction(
    store_engine: Engine, tmp_path: Path, large: bool, count: int
) -> None:
    """Saving the answer fails (the claim was taken over meanwhile): the messages roll
    back with it. Saved, it is the 202's body, byte for byte. On SQLite a batch of more
    than 500 messages and a large message are staged (store.staging): the answer is saved
    in the transaction that accepts them."""
    ingestor, project_id = _ingestor_with_destination(store_engine, tmp_path)
    now = time.time()
    got = idempotency.claim(
        store_engine, project_id, "k", "sha", now=now, window=3600, abandon_after=600
    )
    assert got.first
    mine = idempotency.KeyClaim(project_id, "k", got.created_at)
    lost = idempotency.KeyClaim(project_id, "k", got.created_at - 1)

    def ingest(claim: idempotency.KeyClaim) -> Any:
        if large:
            body = json.dumps(message(1, destination="lake")).encode()
            return ingestor.ingest_large(project_id, io.BytesIO(body), claim=claim)
        batch = [message(i, destination="lake", pad=20) for i in range(count)]
        return ingestor.ingest(project_id, batch, batch=True, claim=claim)

    with pytest.raises(Conflict, match="taken over"):
        ingest(lost)
    assert _stored(store_engine, project_id) == 0
    assert _answer(store_engine, project_id) is None

    sent = ingest(mine).response_body()  # what the 202 says
    assert _stored(store_engine, project_id) == count
    assert _answer(store_engine, project_id) == sent
    # A release after the commit (the request failed later) leaves the answer.
    idempotency.release(store_engine, mine)
    assert _answer(store_engine, project_id) == sent


def test_an_abandoned_claim_is_not_taken_over_once_it_has_its_answer(
    store_engine: Engine,
) -> None:
    """The claim the takeover read had no answer; the one it deletes must not have one."""
    project_id = create_project(store_engine, f"keys-{uuid.uuid4().hex[:8]}").project.id
    args: dict[str, Any] = {"window": 3600, "abandon_after": 600}
    got = idempotency.claim(store_engine, project_id, "k", "sha", now=1000.0 + time.time(), **args)
    claim = idempotency.KeyClaim(project_id, "k", got.created_at)
    with store_engine.begin() as conn:
        idempotency.save_answer(conn, claim, b'{"accepted":[]}')
    late = idempotency.claim(store_engine, project_id, "k", "sha", now=got.created_at + 601, **args)
    assert (late.first, late.response) == (False, b'{"accepted":[]}')
