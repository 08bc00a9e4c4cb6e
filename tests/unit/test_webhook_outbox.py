"""Notifications below the server (SPEC §4), on a real SQLite file and a loopback receiver:
the outbox gets one event per transition and per subscribed endpoint of the project only;
the dispatcher signs (verified with the `standardwebhooks` library), retries a 5xx with the
same webhook-id, gives up after the retry window, and leaves a row whose sender died to
the next claim; the endpoint policy is asked before every connection."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update
from tests.support.webhook_receiver import WebhookReceiver

from s3dest.access.audit import CLI
from s3dest.destinations.secrets import SecretBox
from s3dest.errors import InvalidInput
from s3dest.notifications import dispatch, sender, service, signing
from s3dest.s3 import egress
from s3dest.settings import Settings
from s3dest.store import projects, queue
from s3dest.store import webhooks as store
from s3dest.store.destinations import DestinationFields, insert_destination
from s3dest.store.engine import make_engine, transaction, upgrade
from s3dest.store.tables import webhook_deliveries

BOX = SecretBox([os.urandom(32)])


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(Settings(data_dir=tmp_path))
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as r:
        yield r


def _project_with_destination(engine: Engine, name: str = "p") -> tuple[str, str]:
    project = projects.create_project(engine, name).project
    destination_id = f"dest-{name}"
    insert_destination(
        engine,
        destination_id=destination_id,
        project_id=project.id,
        fields=DestinationFields(
            name="d",
            bucket="bucket",
            region="us-east-1",
            access_key_id="AKIAIOSFODNN7EXAMPLE",
            secret_access_key_enc="v1:x:y",
            session_token_enc=None,
            key_template=None,
            storage_class="STANDARD",
            endpoint_url=None,
            write_mode="overwrite",
            enabled=True,
        ),
    )
    return project.id, destination_id


def _hook(engine: Engine, project_id: str, url: str, events: list[str] | None = None) -> str:
    created = service.create(engine, BOX, project_id=project_id, url=url, events=events, actor=CLI)
    return created.secret


def _fail(engine: Engine, destination_id: str, version: int = 1) -> None:
    queue.hold_destination(
        engine,
        destination_id,
        diagnosis="Access denied: the key may not s3:PutObject",
        code="AccessDenied",
        probe_delay=lambda n: 60.0,
        version=version,
    )


def _types(engine: Engine) -> list[str]:
    with transaction(engine) as conn:
        return list(
            conn.execute(
                select(webhook_deliveries.c.event_type).order_by(webhook_deliveries.c.id)
            ).scalars()
        )


def test_one_event_per_transition_for_the_projects_subscribed_endpoints(
    engine: Engine, receiver: WebhookReceiver
) -> None:
    project, destination = _project_with_destination(engine)
    other, other_destination = _project_with_destination(engine, "other")
    _hook(engine, project, receiver.url)
    _hook(engine, project, receiver.url + "/parked-only", ["message.parked"])
    _hook(engine, other, receiver.url + "/other")

    _fail(engine, destination)
    _fail(engine, destination)  # a probe failing again: the same outage
    assert _types(engine) == ["destination.failing"]
    # An update clears the failure; failing again before any write is still that outage.
    with transaction(engine) as conn:
        conn.exec_driver_sql(
            "UPDATE destinations SET failing_since = NULL, version = 2 WHERE id = ?",
            (destination,),
        )
    _fail(engine, destination, version=2)
    assert _types(engine) == ["destination.failing"]
    queue.mark_healthy(engine, destination)  # a write succeeded
    queue.mark_healthy(engine, destination)
    assert _types(engine) == ["destination.failing", "destination.recovered"]
    _fail(engine, destination, version=2)
    assert _types(engine)[-1] == "destination.failing"
    # Nothing for the other project's endpoint; the other project's outage is its own.
    with transaction(engine) as conn:
        targets = conn.execute(select(webhook_deliveries.c.project_id)).scalars().all()
    assert set(targets) == {project}
    _fail(engine, other_destination)
    assert _types(engine).count("destination.failing") == 3


def test_a_parked_message_is_announced_by_the_transaction_that_parks_it(
    engine: Engine, receiver: WebhookReceiver
) -> None:
    project, destination = _project_with_destination(engine)
    _hook(engine, project, receiver.url)
    now = time.time()
    _enqueue(engine, project, destination, now)
    claimed = queue.claim(engine, "w1", 10, 60)
    assert [c.event_id for c in claimed] == ["e1", "e2"]
    outcome = queue.Outcome(
        event_id="e1",
        state="parked",
        started_at=now,
        finished_at=now,
        error="key template failed for this message: groupRef is missing",
        error_kind="message",
    )
    assert queue.finish(engine, "w1", "w1", [outcome]) == 1
    assert queue.finish(engine, "w1", "w1", [outcome]) == 0  # the lease is gone: no event
    stolen = queue.Outcome(event_id="e2", state="parked", started_at=now, finished_at=now)
    assert queue.finish(engine, "someone-else", "x", [stolen]) == 0
    assert _types(engine) == ["message.parked"]


def _enqueue(engine: Engine, project: str, destination: str, now: float) -> None:
    with transaction(engine) as conn:
        queue.enqueue(
            conn,
            [
                {
                    "event_id": event_id,
                    "project_id": project,
                    "destination_id": destination,
                    "state": "queued",
                    "event_time_ns": 0,
                    "accepted_at": now,
                    "body": b"{}",
                    "body_size": 2,
                    "next_attempt_at": now - 1,
                    "updated_at": now,
                }
                for event_id in ("e1", "e2")
            ],
        )


def test_deliveries_are_signed_retried_with_the_same_id_then_recorded(
    engine: Engine, receiver: WebhookReceiver
) -> None:
    project, destination = _project_with_destination(engine)
    receiver.secret = _hook(engine, project, receiver.url)
    settings = Settings(webhook_retry_base_seconds=0.01, webhook_retry_max_seconds=0.02)
    dispatcher = dispatch.Dispatcher(engine, settings, BOX)
    _fail(engine, destination)
    receiver.fail_next(1, status=503)
    # Answered 503, retried (after at most 20 ms here), then delivered.
    deadline = time.monotonic() + 10
    delivered = 0
    while not delivered and time.monotonic() < deadline:
        delivered = dispatcher.run_once()
    assert delivered == 1
    assert dispatcher.run_once() == 0  # nothing left
    assert [r.answered for r in receiver.requests] == [503, 200]
    assert receiver.requests[0].webhook_id == receiver.requests[1].webhook_id
    assert all(r.verified is not None for r in receiver.requests)
    event = receiver.events()[0]
    assert event["type"] == "destination.failing"
    assert event["data"]["diagnosis"].startswith("Access denied")
    assert event["data"]["errorCode"] == "AccessDenied"
    [row] = service.deliveries(engine, project_id=project, webhook_id=_only_hook(engine, project))
    assert (row.state, row.attempts, row.last_status) == ("delivered", 2, 200)


def _only_hook(engine: Engine, project: str) -> str:
    [hook] = service.list_(engine, project_id=project)
    return hook.id


def test_a_delivery_is_given_up_after_the_retry_window(
    engine: Engine, receiver: WebhookReceiver
) -> None:
    project, destination = _project_with_destination(engine)
    receiver.secret = _hook(engine, project, receiver.url)
    _fail(engine, destination)
    with transaction(engine) as conn:
        conn.execute(
            update(webhook_deliveries).values(
                created_at=time.time() - dispatch.RETRY_WINDOW_SECONDS - 1
            )
        )
    receiver.fail_next(1, status=500)
    assert dispatch.Dispatcher(engine, Settings(), BOX).run_once() == 0
    [row] = service.deliveries(engine, project_id=project, webhook_id=_only_hook(engine, project))
    assert (row.state, row.last_status) == ("failed", 500)
    assert "HTTP 500" in (row.last_error or "")


def test_a_row_whose_sender_died_is_sent_by_the_next_claim(
    engine: Engine, receiver: WebhookReceiver
) -> None:
    project, destination = _project_with_destination(engine)
    receiver.secret = _hook(engine, project, receiver.url)
    _fail(engine, destination)
    [taken] = store.claim_due(engine, "dead-process", limit=5, lease_seconds=0.0)
    assert store.claim_due(engine, "other", limit=5, lease_seconds=60) != []  # lease expired
    # The dead process's late answer is fenced off: the row is another's now.
    assert not store.record_attempt(
        engine,
        "dead-process",
        taken.id,
        status=200,
        error=None,
        next_attempt_at=None,
        delivered=True,
    )
    with transaction(engine) as conn:
        conn.execute(update(webhook_deliveries).values(next_attempt_at=0.0))
    assert dispatch.Dispatcher(engine, Settings(), BOX).run_once() == 1
    assert [e["type"] for e in receiver.events()] == ["destination.failing"]


def test_the_endpoint_policy_is_asked_before_every_connection(
    engine: Engine, receiver: WebhookReceiver
) -> None:
    project, _ = _project_with_destination(engine)
    previous = egress.current()
    try:
        egress.configure(egress.EgressPolicy.from_setting(""))  # loopback not allow-listed
        with pytest.raises(InvalidInput, match="loopback"):
            _hook(engine, project, receiver.url)
        sent = sender.post(receiver.url, "{}", signing.headers(signing.new_secret(), "m", "{}"))
        assert sent.status is None and "loopback" in (sent.error or "")
        for url in (
            "http://169.254.169.254/latest",
            "http://[::ffff:10.0.0.1]/",
            "http://0x7f000001/",
        ):
            with pytest.raises(InvalidInput):
                _hook(engine, project, url)
    finally:
        egress.configure(previous)
    assert receiver.requests == []
    for bad in ("ftp://example.com/x", "https://user:pw@example.com/", "not a url"):
        with pytest.raises(InvalidInput) as info:
            _hook(engine, project, bad)
        assert "url" in info.value.fields
    with pytest.raises(InvalidInput, match="unknown event type"):
        _hook(engine, project, receiver.url, ["destination.exploded"])


def test_the_secret_is_stored_encrypted_and_signs_what_receivers_verify(engine: Engine) -> None:
    project, _ = _project_with_destination(engine)
    created = service.create(engine, BOX, project_id=project, url="http://127.0.0.1:9/x", actor=CLI)
    with transaction(engine) as conn:
        stored = conn.exec_driver_sql("SELECT secret_enc FROM webhooks").scalar_one()
    assert created.secret not in stored and stored.startswith("v1:")
    assert BOX.decrypt(stored, aad=signing.aad(created.webhook.id)) == created.secret
    from standardwebhooks.webhooks import Webhook

    body = '{"type":"webhook.test"}'
    headers = signing.headers(created.secret, "msg_1", body)
    assert Webhook(created.secret).verify(body, headers) == {"type": "webhook.test"}
