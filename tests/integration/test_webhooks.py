"""Notifications against a real `s3dest serve` (SPEC §4), on SQLite and PostgreSQL: a
receiver on loopback verifies each delivery's Standard Webhooks signature and gets each
event once per transition (failing → recovered → failing again is three events, a parked
message one more), retried with the same webhook-id when it answers 5xx; the payloads
carry the diagnosis and the reason, and no secret. An endpoint subscribed to summary.daily
gets the day's summary, signed, from a process that was down at midnight."""

from __future__ import annotations

import re
import time
from pathlib import Path

from sqlalchemy import update
from tests.support.builders import create_destination, message
from tests.support.dashboard import csrf_token, sign_in
from tests.support.moto_server import S3Server
from tests.support.polling import wait_for_state, wait_until
from tests.support.s3dest_server import S3destEnv, serve
from tests.support.webhook_receiver import WebhookReceiver

from s3dest.settings import Settings
from s3dest.store.engine import make_engine, transaction
from s3dest.store.summaries import last_completed_day
from s3dest.store.tables import messages, webhooks

FAST = {
    "S3DEST_RETRY_BASE_SECONDS": "0.05",
    "S3DEST_RETRY_MAX_SECONDS": "0.5",
    "S3DEST_PROBE_BASE_SECONDS": "30",  # no probe between the steps below
    "S3DEST_WEBHOOK_RETRY_BASE_SECONDS": "0.1",
    "S3DEST_WEBHOOK_RETRY_MAX_SECONDS": "0.2",
}
NO_GROUP_TEMPLATE = "join('/', [data.groupRef, metadata.\"event-id\"])"


def test_each_transition_is_announced_once_signed_and_retried(
    s3dest_env: S3destEnv,
    project: tuple[str, str],
    tmp_path: Path,
    s3_server: S3Server,
    bucket: str,
) -> None:
    s3dest_env.extra.update(FAST)
    server = serve(s3dest_env, tmp_path)
    _, api_key = project
    admin = s3_server.admin_credentials
    wrong_secret = admin.secret_access_key[:-4] + "AAAA"
    try:
        with WebhookReceiver() as receiver, server.client(api_key) as client:
            http = client._http
            created = http.post("/v1/webhooks", json={"url": receiver.url})
            assert created.status_code == 201, created.text
            hook = created.json()
            receiver.secret = hook["secret"]
            assert hook["secret"].startswith("whsec_")
            assert hook["events"] == [
                "destination.failing",
                "destination.recovered",
                "message.parked",
            ]
            listed = http.get("/v1/webhooks").json()["webhooks"]
            assert [w["id"] for w in listed] == [hook["id"]] and "secret" not in listed[0]

            # The endpoint's test: one signed webhook.test, answered 200.
            tested = http.post(f"/v1/webhooks/{hook['id']}/test").json()
            assert tested == {"ok": True, "status": 200, "error": None}
            assert [e["type"] for e in receiver.events()] == ["webhook.test"]

            # failing (the receiver answers the first try 503: retried, same webhook-id)
            receiver.fail_next(1, status=503)
            dest = create_destination(
                client, s3_server, bucket, creds=admin, secretAccessKey=wrong_secret
            )
            first = client.send(message(1))["eventId"]
            wait_for_state(client, first, "held", 60)
            wait_until(lambda: receiver.events("destination.failing"), 60, "failing event")
            # recovered: fixed, the held message is written
            client.update_destination(dest["id"], secretAccessKey=admin.secret_access_key)
            wait_for_state(client, first, "delivered", 60)
            wait_until(lambda: receiver.events("destination.recovered"), 60, "recovered event")
            # failing again
            client.update_destination(dest["id"], secretAccessKey=wrong_secret)
            second = client.send(message(2))["eventId"]
            wait_for_state(client, second, "held", 60)
            wait_until(
                lambda: len(receiver.events("destination.failing")) == 2, 60, "second failing"
            )
            # parked, with the reason
            client.update_destination(
                dest["id"], secretAccessKey=admin.secret_access_key, keyTemplate=NO_GROUP_TEMPLATE
            )
            without_group = message(3)
            del without_group["groupRef"]
            parked = client.send(without_group)["eventId"]
            wait_for_state(client, parked, "parked", 60)
            wait_until(lambda: receiver.events("message.parked"), 60, "parked event")
            wait_for_state(client, second, "delivered", 60)
            wait_until(
                lambda: len(receiver.events("destination.recovered")) == 2, 60, "second recovery"
            )

            events = [e for e in receiver.events() if e["type"] != "webhook.test"]
            assert [e["type"] for e in events] in (
                [
                    "destination.failing",
                    "destination.recovered",
                    "destination.failing",
                    "message.parked",
                    "destination.recovered",
                ],
                [
                    "destination.failing",
                    "destination.recovered",
                    "destination.failing",
                    "destination.recovered",
                    "message.parked",
                ],
            )
            assert all(r.verified is not None for r in receiver.requests), "bad signature"
            # Each transition once: the only repeated webhook-id is the one answered 503.
            ids = [r.webhook_id for r in receiver.requests]
            repeated = {i for i in ids if ids.count(i) > 1}
            assert len(repeated) == 1 and ids.count(repeated.pop()) == 2
            assert receiver.requests[1].answered == 503
            assert receiver.requests[1].webhook_id == receiver.requests[2].webhook_id

            failing = events[0]["data"]
            assert failing["destination"]["id"] == dest["id"]
            assert "secret access key" in failing["diagnosis"].lower()
            assert failing["errorCode"] == "SignatureDoesNotMatch"
            assert failing["destination"]["name"] == "d"
            parked_event = receiver.events("message.parked")[0]["data"]
            assert parked_event["eventId"] == parked
            assert parked_event["reason"] and "template" in parked_event["reason"].lower()
            bodies = b"".join(r.body for r in receiver.requests)
            for secret in (admin.secret_access_key, wrong_secret, hook["secret"], api_key):
                assert secret.encode() not in bodies

            deliveries = http.get(f"/v1/webhooks/{hook['id']}/deliveries").json()["deliveries"]
            assert len(deliveries) == 5 and {d["state"] for d in deliveries} == {"delivered"}
            assert sorted(d["attempts"] for d in deliveries) == [1, 1, 1, 1, 2]

            # Endpoint policy: the metadata address is refused, loopback allow-listed or not.
            refused = http.post("/v1/webhooks", json={"url": "http://169.254.169.254/x"})
            assert refused.status_code == 422
            assert "metadata" in refused.json()["error"]["fields"]["url"]

            if s3dest_env.database_url is None:
                _dashboard_page(server.url, api_key, receiver)

            assert http.delete(f"/v1/webhooks/{hook['id']}").status_code == 204
            assert http.get("/v1/webhooks").json() == {"webhooks": []}
            assert http.post(f"/v1/webhooks/{hook['id']}/test").status_code == 404
    finally:
        server.kill()
    assert "whsec_" not in server.log()


def _dashboard_page(base_url: str, api_key: str, receiver: WebhookReceiver) -> None:
    """The Webhooks page: add (the secret shown on that answer only), test, delete."""
    page = sign_in(base_url, api_key)
    try:
        opened = page.get("/webhooks")
        assert opened.status_code == 200 and receiver.url in opened.text
        added = page.post(
            "/webhooks",
            data={
                "url": receiver.url + "/page",
                "events": ["message.parked"],
                "csrf_token": csrf_token(opened.text),
            },
        )
        assert added.status_code == 200, added.text
        secret = re.search(r'id="new-webhook-secret">(whsec_[^<]+)<', added.text)
        assert secret, added.text
        listed = page.get("/webhooks").text
        assert secret.group(1) not in listed and receiver.url + "/page" in listed
        hook_id = re.findall(r'action="/webhooks/([^/"]+)/test"', listed)[-1]
        before = len(receiver.requests)
        tested = page.post(f"/webhooks/{hook_id}/test", data={"csrf_token": csrf_token(listed)})
        assert "the endpoint answered HTTP 200" in tested.text
        assert len(receiver.requests) == before + 1
        gone = page.post(f"/webhooks/{hook_id}/delete", data={"csrf_token": csrf_token(listed)})
        assert gone.status_code == 303
        after = page.get("/webhooks").text
        assert "deleted." in after and f'id="webhook-{hook_id}"' not in after
        refused = page.post(
            "/webhooks",
            data={"url": "http://169.254.169.254/", "csrf_token": csrf_token(listed)},
        )
        assert refused.status_code == 422 and "metadata" in refused.text
    finally:
        page.close()


def test_an_announcement_pending_at_a_crash_is_delivered_after_the_restart(
    s3dest_env: S3destEnv,
    project: tuple[str, str],
    tmp_path: Path,
    s3_server: S3Server,
    bucket: str,
) -> None:
    """Issue 16: the outbox was proven durable only at store level. Here the receiver
    answers 503 while destination.failing is retried, the server is killed (-9) with the
    announcement still pending, and after the restart the same announcement (the same
    webhook-id) arrives, once."""
    s3dest_env.extra.update(FAST)
    server = serve(s3dest_env, tmp_path)
    _, api_key = project
    admin = s3_server.admin_credentials
    try:
        with WebhookReceiver() as receiver:
            with server.client(api_key) as client:
                hook = client._http.post("/v1/webhooks", json={"url": receiver.url}).json()
                receiver.secret = hook["secret"]
                receiver.fail_next(1_000_000, status=503)
                create_destination(
                    client,
                    s3_server,
                    bucket,
                    creds=admin,
                    secretAccessKey=admin.secret_access_key[:-4] + "AAAA",
                )
                held = client.send(message(1))["eventId"]
                wait_for_state(client, held, "held", 60)
                wait_until(lambda: len(receiver.requests) >= 2, 60, "retried announcement")
            server.kill()
            tried = {r.webhook_id for r in receiver.requests}
            assert len(tried) == 1 and not receiver.events()  # pending: never answered 2xx
            receiver.stop_failing()
            server.restart()
            wait_until(lambda: receiver.events("destination.failing"), 60, "after the restart")
            delivered = [r for r in receiver.requests if r.answered < 300]
            assert [r.webhook_id for r in delivered] == list(tried)
            assert receiver.events("destination.failing")[0]["data"]["destination"]["name"] == "d"
    finally:
        server.kill()


def test_a_daily_summary_is_signed_and_sent_by_a_process_that_was_down_at_midnight(
    s3dest_env: S3destEnv,
    project: tuple[str, str],
    tmp_path: Path,
    s3_server: S3Server,
    bucket: str,
) -> None:
    """The endpoint subscribes to summary.daily alone (a misspelt event keeps its 422); two
    messages are delivered; then, with the server down, the database is moved a day on
    (the endpoint and the deliveries belong to the day that ended) and the restarted
    server sends that day's summary at once, signed, with the counts and no secret."""
    s3dest_env.extra.update(FAST)
    server = serve(s3dest_env, tmp_path)
    project_id, api_key = project
    admin = s3_server.admin_credentials
    try:
        with WebhookReceiver() as receiver:
            with server.client(api_key) as client:
                http = client._http
                misspelt = http.post(
                    "/v1/webhooks", json={"url": receiver.url, "events": ["summary.weekly"]}
                )
                assert misspelt.status_code == 422, misspelt.text
                assert "summary.daily" in misspelt.text and "events" in misspelt.text
                created = http.post(
                    "/v1/webhooks", json={"url": receiver.url, "events": ["summary.daily"]}
                )
                assert created.status_code == 201, created.text
                hook = created.json()
                assert hook["events"] == ["summary.daily"]
                receiver.secret = hook["secret"]
                dest = create_destination(client, s3_server, bucket, creds=admin)
                sent = [client.send(message(i))["eventId"] for i in (1, 2)]
                for event_id in sent:
                    wait_for_state(client, event_id, "delivered", 60)
            server.kill()
            day = last_completed_day(time.time())
            settings = Settings(data_dir=s3dest_env.data_dir, database_url=s3dest_env.database_url)
            engine = make_engine(settings)
            try:
                with transaction(engine) as conn:
                    conn.execute(update(webhooks).values(created_at=day.start - 60))
                    conn.execute(
                        update(messages)
                        .where(messages.c.event_id.in_(sent))
                        .values(delivered_at=day.start + 3600)
                    )
            finally:
                engine.dispose()
            server.restart()
            wait_until(lambda: receiver.events("summary.daily"), 60, "the daily summary")
            [summary] = receiver.events("summary.daily")
            assert all(r.verified is not None for r in receiver.requests), "bad signature"
            assert [e["type"] for e in receiver.events()] == ["summary.daily"]
            assert summary["data"] == {
                "day": day.iso,
                "projectId": project_id,
                "destinations": [
                    {
                        "id": dest["id"],
                        "name": "d",
                        "bucket": bucket,
                        "region": s3_server.region,
                        "delivered": 2,
                        "parked": 0,
                        "held": 0,
                        "failing": False,
                        "diagnosis": None,
                    }
                ],
                "totals": {"delivered": 2, "parked": 0, "held": 0},
            }
            bodies = b"".join(r.body for r in receiver.requests)
            for secret in (admin.access_key_id, admin.secret_access_key, hook["secret"], api_key):
                assert secret.encode() not in bodies
    finally:
        server.kill()
