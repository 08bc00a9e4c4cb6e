"""`POST /v1/messages/{id}/replay` and `/redeliver` answer with the message as they left it,
`queued`, even when a worker claims it at once.

Both wake the workers. They read the record for their answer after that, so a worker that
claimed the message in between made the answer say `delivering` (test_batch_records failed
that way on both databases in a CI run). Here the app runs in-process over the test's real
database, and its `wake_workers` claims every queued message at once, as the quickest
worker could: the answers must still say `queued`, and the claim must really have
happened.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from tests.support.builders import create_destination, message
from tests.support.moto_server import S3Server
from tests.support.s3dest_server import S3destEnv

from s3dest.app import create_app
from s3dest.runtime import AppState, open_state
from s3dest.s3 import egress
from s3dest.store.engine import transaction
from s3dest.store.tables import messages


@pytest.fixture
def state(s3dest_env: S3destEnv) -> Iterator[AppState]:
    previous = egress.current()  # open_state installs the process's endpoint policy
    state = open_state(s3dest_env.settings())
    try:
        yield state
    finally:
        state.engine.dispose()
        egress.configure(previous)


def _claim_every_queued_message(state: AppState) -> list[str]:
    """Make `state.wake_workers` lease every queued message, as a worker would; returns the
    list of the event ids it claimed, filled as it runs."""
    claimed: list[str] = []

    def claim() -> None:
        with transaction(state.engine) as conn:
            rows = conn.execute(
                update(messages)
                .where(messages.c.state == "queued")
                .values(state="delivering", lease_owner="quick-worker")
                .values(lease_expires_at=time.time() + 60)
                .returning(messages.c.event_id)
            ).all()
        claimed.extend(r.event_id for r in rows)

    state.wake_workers = claim
    return claimed


def test_replay_and_redeliver_answer_queued_though_a_worker_claims_at_once(
    state: AppState, project: tuple[str, str], s3_server: S3Server, bucket: str
) -> None:
    _, key = project
    app = create_app(state, workers=False)
    with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as api:
        create_destination(api, s3_server, bucket)
        sent = api.post("/v1/messages", json={"messages": [message(0), message(1)]})
        assert sent.status_code == 202, sent.text
        delivered, parked = sorted(a["eventId"] for a in sent.json()["accepted"])
        now = time.time()
        with transaction(state.engine) as conn:  # as a worker's outcomes would leave them
            conn.execute(
                update(messages)
                .where(messages.c.event_id == delivered)
                .values(
                    state="delivered",
                    attempts=1,
                    bucket=bucket,
                    object_key=f"k/{delivered}",
                    etag='"0123456789abcdef0123456789abcdef"',
                    delivered_at=now,
                )
            )
            conn.execute(
                update(messages)
                .where(messages.c.event_id == parked)
                .values(state="parked", attempts=1, last_error="a message error")
            )
        claimed = _claim_every_queued_message(state)

        again = api.post(f"/v1/messages/{delivered}/redeliver")
        assert again.status_code == 200, again.text
        assert again.json()["state"] == "queued"
        replayed = api.post(f"/v1/messages/{parked}/replay")
        assert replayed.status_code == 200, replayed.text
        assert replayed.json()["state"] == "queued"

    # The quick worker did claim both, right after each request queued them.
    assert claimed == [delivered, parked]
    with transaction(state.engine) as conn:
        states = dict(conn.execute(select(messages.c.event_id, messages.c.state)).all())
    assert states == {delivered: "delivering", parked: "delivering"}
