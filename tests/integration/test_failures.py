"""Failure handling as a user sees it (SPEC §4): destination errors hold messages and say
why, message errors park one message, transient errors retry, SIGTERM loses nothing."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import orjson
import pytest
from tests.support.aws_errors_server import AwsErrorsServer
from tests.support.builders import create_destination, message, send_in_batches
from tests.support.checks import assert_all_delivered
from tests.support.fault_proxy import FaultProxy
from tests.support.moto_server import S3Server
from tests.support.polling import states, wait_for_state, wait_queue_empty, wait_until
from tests.support.s3dest_server import S3destEnv, S3destProcess, serve
from tests.support.store_counts import state_counts

FAST = {
    "S3DEST_RETRY_BASE_SECONDS": "0.05",
    "S3DEST_RETRY_MAX_SECONDS": "0.5",
    "S3DEST_PROBE_BASE_SECONDS": "0.2",
    "S3DEST_PROBE_MAX_SECONDS": "1",
}


@pytest.fixture
def server(s3dest_env: S3destEnv, tmp_path: Path) -> Any:
    """`s3dest serve` with fast retry and probe schedules."""
    s3dest_env.extra.update(FAST)
    process = serve(s3dest_env, tmp_path)
    try:
        yield process
    finally:
        process.kill()


def test_wrong_secret_holds_messages_until_patched(
    server: S3destProcess, project: tuple[str, str], s3_server: S3Server, bucket: str
) -> None:
    _, api_key = project
    creds = s3_server.putonly_user(bucket)
    with server.client(api_key) as client:
        dest = create_destination(
            client,
            s3_server,
            bucket,
            accessKeyId=creds.access_key_id,
            secretAccessKey=creds.secret_access_key[:-4] + "AAAA",
        )
        ids = send_in_batches(client, (message(i) for i in range(20)))
        wait_until(lambda: set(states(client, ids)) == {"held"}, 60, "all messages held")
        shown = client.destination(dest["id"])
        assert shown["status"] == "failing"
        assert "signature" in shown["diagnosis"].lower()
        assert "secret access key" in shown["diagnosis"].lower()
        assert creds.secret_access_key[:-4] not in str(shown)  # never echoes the secret
        record = client.message(ids[0])
        assert record["lastErrorKind"] == "destination" and record["lastError"]
        # Also new messages wait while it is failing.
        ids.append(client.send(message(99))["eventId"])
        wait_until(lambda: client.message(ids[-1])["state"] == "held", 60, "new message held")

        client.update_destination(dest["id"], secretAccessKey=creds.secret_access_key)
        wait_until(lambda: set(states(client, ids)) == {"delivered"}, 120, "delivery after the fix")
        assert client.destination(dest["id"])["status"] == "healthy"
        assert client.deliveries(state="parked") == []  # no replay was needed
    assert_all_delivered(server, api_key, s3_server, bucket, ids)


def test_a_template_failing_for_one_message_parks_only_it(
    server: S3destProcess, project: tuple[str, str], s3_server: S3Server, bucket: str
) -> None:
    _, api_key = project
    with server.client(api_key) as client:
        dest = create_destination(
            client,
            s3_server,
            bucket,
            keyTemplate="join('/', [data.groupRef, metadata.\"event-id\"])",
        )
        without_group = message(1)
        del without_group["groupRef"]
        good = [client.send(message(i))["eventId"] for i in (0, 2, 3)]
        bad = client.send(without_group)["eventId"]
        wait_until(lambda: set(states(client, good)) == {"delivered"}, 60, "the good ones")
        parked = wait_for_state(client, bad, "parked", 60)
        assert parked["lastErrorKind"] == "message"
        assert "groupRef" in parked["lastError"] or "template" in parked["lastError"].lower()
        for event_id in good:
            assert client.message(event_id)["key"].startswith("group-")
        # The destination itself is fine.
        assert client.destination(dest["id"])["status"] == "healthy"

        # Fix the template, replay the one message.
        client.update_destination(
            dest["id"], keyTemplate="join('/', ['fixed', metadata.\"event-id\"])"
        )
        replayed = client.replay(bad)
        assert replayed["state"] in ("queued", "delivering", "delivered")
        record = wait_for_state(client, bad, "delivered", 60)
        assert record["key"] == f"fixed/{bad}"
        with pytest.raises(Exception, match="not parked"):
            client.replay(bad)

        # Replay every parked message of the destination at once.
        client.update_destination(
            dest["id"], keyTemplate="join('/', [data.groupRef, metadata.\"event-id\"])"
        )
        more = [client.send(without_group)["eventId"] for _ in range(3)]
        wait_until(lambda: set(states(client, more)) == {"parked"}, 60, "three parked")
        client.update_destination(
            dest["id"], keyTemplate="join('/', ['fixed', metadata.\"event-id\"])"
        )
        replay = client._call("POST", f"/v1/destinations/{dest['id']}/replay")
        assert replay == {"replayed": 3}
        wait_until(lambda: set(states(client, more)) == {"delivered"}, 60, "destination replay")
    assert_all_delivered(server, api_key, s3_server, bucket, [*good, bad, *more])


def _errors_destination(client: Any, errors: AwsErrorsServer, **extra: Any) -> dict[str, Any]:
    return client.create_destination(
        name="canned",
        bucket="canned-bucket",
        region="us-east-1",
        accessKeyId="AKIAIOSFODNN7EXAMPLE",
        secretAccessKey="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        endpointUrl=errors.endpoint,
        **extra,
    )


def test_transient_errors_are_retried_until_delivered(
    server: S3destProcess, project: tuple[str, str], aws_errors_server: AwsErrorsServer
) -> None:
    """SlowDown, then InternalError twice, then OK: retried until delivered, every attempt
    to the same key.

    Catches the planted bugs: a delivered outcome that keeps the last transient error
    (`lastError` was only checked as "None or delivered", which right after waiting for
    delivered cannot fail); the worker rendering the key with the clock at each attempt
    instead of the message's stamped event time (every key still held the event id; planted
    as `event_time_ns=time.time_ns()` in `delivery/dispatch.prepare`: five PUT paths). It
    replaces the unit test `test_every_retry_renders_the_same_key`, which called the pure
    renderer twice and passed with that bug planted.
    """
    _, api_key = project
    aws_errors_server.respond_with("SlowDown")  # until further notice
    with server.client(api_key) as client:
        _errors_destination(client, aws_errors_server)
        event_id = client.send(message(1, destination="canned"))["eventId"]
        record = wait_until(
            lambda: (
                (r := client.message(event_id))["state"] == "retrying" and r["attempts"] >= 2 and r
            ),
            60,
            "retrying",
            interval=0.05,
        )
        assert record["lastErrorKind"] == "transient"
        assert "SlowDown" in record["lastError"] or "slow" in record["lastError"].lower()
        assert record["nextAttemptAt"] is not None

        # A few more transient failures, then S3 recovers.
        aws_errors_server.respond_with("InternalError", times=2)
        aws_errors_server.respond_with("OK")
        record = wait_for_state(client, event_id, "delivered", 60)
        assert record["attempts"] > 2
        outcomes = [h["outcome"] for h in record["history"]]
        assert outcomes[-1] == "delivered" and set(outcomes[:-1]) == {"retrying"}
        # Delivered clears the error of the attempts before it.
        assert record["lastError"] is None and record["lastErrorKind"] is None, record
    puts = [r for r in aws_errors_server.requests if r.method == "PUT"]
    assert len(puts) == record["attempts"]
    # Every retry wrote the same key, the one the record names: the default key template
    # starts with the event time, which must be the stamped one, not the clock's at retry.
    assert len({r.path for r in puts}) == 1, [r.path for r in puts]
    assert unquote(puts[0].path.split("?", 1)[0]) == f"/canned-bucket/{record['key']}"
    assert event_id in record["key"]


def test_a_fixed_destination_resumes_by_probe_without_a_patch(
    server: S3destProcess, project: tuple[str, str], aws_errors_server: AwsErrorsServer
) -> None:
    """Held messages resume when a probe succeeds (e.g. the bucket policy was fixed in AWS)."""
    _, api_key = project
    aws_errors_server.respond_with("AccessDenied")
    with server.client(api_key) as client:
        dest = _errors_destination(client, aws_errors_server)
        ids = send_in_batches(client, (message(i, destination="canned") for i in range(5)))
        wait_until(lambda: set(states(client, ids)) == {"held"}, 60, "held")
        assert client.destination(dest["id"])["status"] == "failing"
        aws_errors_server.respond_with("OK")
        wait_until(lambda: set(states(client, ids)) == {"delivered"}, 60, "probe and resume")
        assert client.destination(dest["id"])["status"] == "healthy"


def test_sigterm_finishes_or_releases_in_flight_work(
    s3dest_env: S3destEnv,
    tmp_path: Path,
    project: tuple[str, str],
    s3_server: S3Server,
    bucket: str,
) -> None:
    """SIGTERM while PUTs are in flight: they finish (and are recorded delivered) or their
    messages go back to the queue; nothing stays `delivering` or leased, and after a restart
    every message is delivered.

    Work is in flight when the signal comes, by construction and checked: S3 answers every
    PUT after 0.3 s (the fault proxy's put_delay, no faults), and SIGTERM is sent once the
    proxy holds PUTs and s3dest's database shows leased messages (both counted just before
    the signal, printed). Catches the planted bug: the coordinator's shutdown not waiting
    for in-flight PUTs (`deadline = time.monotonic()` in `_shutdown`): S3 wrote 38 objects,
    6 were recorded delivered, the rest released to be written again. (Before, nothing
    showed the signal met work; moto answers fast enough that it often met none.)
    """
    _, api_key = project
    proxy = FaultProxy(s3_server.endpoint, put_delay_seconds=0.3).start()
    process = serve(s3dest_env, tmp_path)
    try:
        with process.client(api_key) as client:
            create_destination(client, s3_server, bucket, endpoint=proxy.url)
            ids = send_in_batches(client, (message(i) for i in range(300)), size=100)
            before = wait_until(
                lambda: (
                    proxy.in_flight_now() > 0
                    and (c := state_counts(s3dest_env)).leased > 0
                    and c.undelivered > 0
                    and c
                ),
                60,
                "PUTs in flight",
                interval=0.05,
            )
        puts_held = proxy.in_flight_now()
        code = process.terminate(timeout=120)
        # uvicorn (>= 0.29) re-raises the SIGTERM it caught once its graceful shutdown is
        # done, so `s3dest serve` ends "killed by SIGTERM" (-15) rather than 0 unless the CLI
        # handles that; either way the shutdown must have been the graceful one.
        assert code in (0, -signal.SIGTERM), (code, process.log()[-3000:])
        assert "worker stopped" in process.log()
        after = state_counts(s3dest_env)
        assert puts_held > 0 and before.leased > 0  # the signal met work in flight
        assert after.by_state.get("delivering", 0) == 0 and after.leased == 0, after
        # The PUTs that were in flight finished and were recorded: every object S3 took
        # is a delivered message (none released after S3 had written it).
        wait_until(lambda: proxy.in_flight_now() == 0, 30, "the proxy to answer every PUT")
        written = len(proxy.stats().puts_acknowledged)
        assert after.by_state.get("delivered", 0) == written, (after, written)
        proxy.put_delay_seconds = 0.0  # S3 at full speed again for the rest
        process.start()
        wait_queue_empty(process, api_key, timeout=600)
        assert_all_delivered(process, api_key, s3_server, bucket, ids)
        print(
            f"\nSIGTERM with {before.leased} leased, {puts_held} PUTs held by S3, "
            f"{before.undelivered} undelivered: exit code {code}, after it {after}"
        )
    finally:
        process.kill()
        proxy.stop()


# The release is one UPDATE of the queue (store/queue), the same on both databases; the
# point here is that the stopping worker calls it: one database.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sigterm_gives_back_the_claimed_work_its_window_cannot_send(
    s3dest_env: S3destEnv,
    tmp_path: Path,
    project: tuple[str, str],
    s3_server: S3Server,
    bucket: str,
) -> None:
    """A worker claims up to 40 messages but sends at most 2 PUTs per destination, 0.3 s
    each, and its graceful window (the request timeout) is 3 s: at SIGTERM it holds more
    leased messages than it can send in the window. What is left when the window closes
    is given back to the queue at its stop (`broker.release`, the count in its "worker
    stopped" line): nothing stays leased to the stopped worker; they are queued, for any
    worker to claim at once.

    Catches the planted bug `released = 0` in place of `self.broker.release(self.name)`
    (coordinator `_shutdown`): the messages stayed leased to the stopped worker until their
    lease ran out. The SIGTERM test above did not catch it: there, the window sends every
    claimed message, so nothing is left to give back."""
    _, api_key = project
    proxy = FaultProxy(s3_server.endpoint, put_delay_seconds=0.3).start()
    s3dest_env.extra.update(
        {
            "S3DEST_WORKER_CONCURRENCY": "40",
            "S3DEST_PER_DESTINATION_CONCURRENCY": "2",
            "S3DEST_REQUEST_TIMEOUT_SECONDS": "3",
        }
    )
    process = serve(s3dest_env, tmp_path)
    try:
        with process.client(api_key) as client:
            create_destination(client, s3_server, bucket, endpoint=proxy.url)
            ids = send_in_batches(client, (message(i) for i in range(60)), size=60)
            before = wait_until(
                lambda: (
                    (held := proxy.in_flight_now()) > 0
                    and (c := state_counts(s3dest_env)).leased >= held + 20
                    and c
                ),
                60,
                "20 claimed messages waiting behind the PUTs in flight",
                interval=0.05,
            )
        code = process.terminate(timeout=120)
        assert code in (0, -signal.SIGTERM), (code, process.log()[-3000:])
        stopped = [
            json.loads(line)
            for line in process.log().splitlines()
            if line.startswith("{") and '"worker stopped"' in line
        ]
        assert len(stopped) == 1, stopped
        after = state_counts(s3dest_env)
        assert after.leased == 0 and after.by_state.get("delivering", 0) == 0, after
        assert stopped[0]["released"] > 0, (stopped, before, after)
        assert after.by_state.get("queued", 0) >= stopped[0]["released"], after
        # Given back means claimable at once by any worker: queued, no lease owner (the
        # restart that delivers them all is the SIGTERM test's above).
        print(f"\nSIGTERM with {before}: {stopped[0]['released']} released, after it {after}")
        assert sum(after.by_state.values()) == len(ids), after
    finally:
        process.kill()
        proxy.stop()


# The create-only logic lives in the worker and the writer, not the queue: one database.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_create_only_412_through_the_worker_is_ours_only_when_the_key_has_our_event_id(
    server: S3destProcess, project: tuple[str, str], s3_server: S3Server, bucket: str
) -> None:
    """`s3dest serve` with real S3 (moto): a create-only PUT refused with 412 counts as
    "already written" only when the key carries the message's own event id (an earlier
    attempt of it); on any other key it is a collision and the message is parked, the first
    object untouched.

    Catches the planted bug: a 412 taken as "already written" for any key
    (`s3.writer._precondition_outcome` without its event-id check), which the writer-level
    tests alone caught: the second message said delivered, its data never written.
    """
    _, api_key = project
    s3 = s3_server.client()
    with server.client(api_key) as client:
        create_destination(
            client,
            s3_server,
            bucket,
            "same",
            writeMode="create-only",
            keyTemplate="join('/', ['same', metadata.objectName])",
        )
        first = client.send(message(1, destination="same"))["eventId"]
        wait_for_state(client, first, "delivered", 60)
        second = client.send(message(2, destination="same"))["eventId"]
        record = wait_until(
            lambda: (r := client.message(second))["state"] in ("delivered", "parked") and r,
            60,
            "the colliding message to be settled",
        )
        assert record["state"] == "parked", record
        assert record["lastErrorKind"] == "message"
        assert "collision" in record["lastError"] and "same/account" in record["lastError"]
        body = orjson.loads(s3.get_object(Bucket=bucket, Key="same/account")["Body"].read())
        assert body["data"]["result"][0]["fields"]["id"] == "1"  # not overwritten

        # Our own earlier attempt: the object is already at the message's key (its event id
        # in it) when the worker first tries; the 412 then means delivered.
        dest = create_destination(
            client,
            s3_server,
            bucket,
            "mine",
            writeMode="create-only",
            keyTemplate="join('/', ['mine', metadata.\"event-id\"])",
            enabled=False,
        )
        third = client.send(message(3, destination="mine"))["eventId"]
        s3.put_object(Bucket=bucket, Key=f"mine/{third}", Body=b'{"data":"earlier attempt"}')
        client.update_destination(dest["id"], enabled=True)
        record = wait_for_state(client, third, "delivered", 60)
        assert record["key"] == f"mine/{third}"
    assert s3.get_object(Bucket=bucket, Key=f"mine/{third}")["Body"].read() == (
        b'{"data":"earlier attempt"}'
    )
