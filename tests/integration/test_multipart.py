"""Large bodies (multipart uploads) against moto and Ceph RGW, through the fault proxy.

Issue 14: a transient fault on one part made s3dest abort the upload; a PutObject-only
key may not, and the abort's 403 held the destination as "Access denied". Each part is
now retried alone; an upload that fails for good is aborted where the key may, and
recorded as an orphan where it may not. create-only holds for multipart bodies
(If-None-Match: * on CompleteMultipartUpload: moto honours it, RGW 16 ignores it, so on
RGW the header is checked on the wire), and the recorded ETag is the object's (RGW
answers CompleteMultipartUpload with an empty <ETag/>).

Bodies are kept small: s3dest runs with 64 KiB inline bodies and 64 KiB parts, which both
test servers accept (tests/conftest.py, tests/support/rgw.py). One s3dest per server.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.conftest import SMALL_PARTS_ENV, TEST_PART_BYTES
from tests.support.dashboard import sign_in
from tests.support.fault_proxy import FaultProxy, running_fault_proxy
from tests.support.fault_state import SeenRequest
from tests.support.moto_server import S3Server
from tests.support.s3_stores import Store
from tests.support.s3dest_server import S3destEnv, S3destProcess, serve

from s3dest.client import Client
from s3dest.devtools.moto import Credentials
from s3dest.errors import MessageDeliveryError
from s3dest.s3.multipart import PART_ATTEMPTS, MultipartOptions
from s3dest.s3.writer import ObjectRequest, S3Destination, prepare_put, put_object, send_put

PARTS = 4  # parts of a test message: enough for one in the middle to fail


@pytest.fixture(scope="module", params=["moto", pytest.param("rgw", marks=pytest.mark.rgw)])
def store(request: pytest.FixtureRequest) -> Store:
    server = request.getfixturevalue("rgw_server" if request.param == "rgw" else "s3_server")
    return Store(request.param, server.endpoint, server.region, server.client(), server)


@pytest.fixture(scope="module")
def s3dest(
    store: Store, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[S3destProcess, str]]:
    tmp = tmp_path_factory.mktemp(f"multipart-{store.name}")
    env = S3destEnv(
        data_dir=tmp / "data",
        extra={
            "S3DEST_SECRET_KEY": "",
            **SMALL_PARTS_ENV,
            # Part and message retries without waits worth the name.
            "S3DEST_RETRY_BASE_SECONDS": "0.02",
            "S3DEST_RETRY_MAX_SECONDS": "0.1",
        },
    )
    env.data_dir.mkdir(parents=True)
    _, api_key = env.create_project("multipart")
    process = serve(env, tmp)
    try:
        yield process, api_key
    finally:
        process.kill()


def large_message(name: str) -> dict[str, Any]:
    """A message whose stored body spans PARTS parts (the last one shorter)."""
    pad = "x" * (TEST_PART_BYTES * (PARTS - 1) + TEST_PART_BYTES // 2)
    return {
        "destination": name,
        "action": "read",
        "provider": "salesforce",
        "installationId": "inst-1",
        "groupRef": "group-1",
        "objectName": "account",
        "result": [{"fields": {"id": "1", "pad": pad}}],
    }


def deliver_through(
    s3dest: tuple[S3destProcess, str], proxy: FaultProxy, bucket: str, creds: Credentials
) -> tuple[Client, str, dict[str, Any]]:
    """Create a destination on `proxy`, send one large message, wait until it is delivered
    (or stops: held, parked). Returns the client, the destination's name and the record."""
    server, api_key = s3dest
    client = server.client(api_key)
    name = f"big-{uuid.uuid4().hex[:8]}"
    client.create_destination(
        name=name,
        bucket=bucket,
        region="us-east-1",
        accessKeyId=creds.access_key_id,
        secretAccessKey=creds.secret_access_key,
        endpointUrl=proxy.url,
    )
    event_id = client.send(large_message(name))["eventId"]
    deadline = time.monotonic() + 60
    while True:
        record = client.message(event_id)
        if record["state"] in ("delivered", "held", "parked"):
            return client, name, record
        assert time.monotonic() < deadline, record
        time.sleep(0.05)


def part_numbers(seen: list[SeenRequest]) -> list[int]:
    return [
        int(r.path.split("partNumber=", 1)[1].split("&", 1)[0])
        for r in seen
        if r.method == "PUT" and "partNumber=" in r.path
    ]


def test_a_transient_fault_on_one_part_retries_that_part_alone(
    store: Store, s3dest: tuple[S3destProcess, str]
) -> None:
    bucket = store.new_bucket()
    with running_fault_proxy(store.endpoint) as proxy:
        proxy.fail_next("slow_down", method="PUT", contains=("partNumber=2",))
        client, name, record = deliver_through(s3dest, proxy, bucket, store.putonly(bucket))
        seen = proxy.seen()

    assert record["state"] == "delivered", record
    assert record["attempts"] == 1  # no message retry: the part was retried inside it
    destination = client.destination(name)
    assert destination["status"] == "healthy", destination
    assert "Access" not in str(destination.get("diagnosis"))
    # One upload; part 2 sent twice, every other part once; nothing aborted.
    assert sum(1 for r in seen if r.method == "POST" and r.path.endswith("?uploads")) == 1
    numbers = part_numbers(seen)
    assert sorted(numbers) == sorted([*range(1, PARTS + 1), 2]), numbers
    assert not [r for r in seen if r.method == "DELETE"]
    # The recorded ETag is the object's (RGW's CompleteMultipartUpload has an empty one).
    head = store.admin.head_object(Bucket=bucket, Key=record["key"])
    assert record["etag"] == head["ETag"] and head["ETag"].endswith(f'-{PARTS}"')
    stored = store.admin.get_object(Bucket=bucket, Key=record["key"])["Body"].read()
    assert orjson.loads(stored)["data"]["result"] == large_message(name)["result"]
    assert stored and head["ContentType"] == "application/json"
    assert client.orphaned_uploads(name)["orphanedUploads"] == []
    assert store.uploads_left(bucket) == []


@pytest.mark.parametrize("key", ["may-abort", "putobject-only"])
def test_an_upload_that_fails_for_good_is_aborted_or_recorded(
    store: Store, s3dest: tuple[S3destProcess, str], key: str
) -> None:
    bucket = store.new_bucket()
    creds = store.may_abort(bucket) if key == "may-abort" else store.putonly(bucket)
    with running_fault_proxy(store.endpoint) as proxy:
        # Part 2 fails on every try of the first attempt: that attempt fails for good.
        proxy.fail_next(
            "internal_error", method="PUT", contains=("partNumber=2",), count=PART_ATTEMPTS
        )
        client, name, record = deliver_through(s3dest, proxy, bucket, creds)
        seen = proxy.seen()

    # The message's next attempt (a new upload) delivered it; the destination never failed.
    assert record["state"] == "delivered", record
    assert record["attempts"] == 2
    errors = [h.get("error") or "" for h in record.get("history", [])]
    assert not [e for e in errors if "Access" in e], errors
    assert client.destination(name)["status"] == "healthy"
    created = [r for r in seen if r.method == "POST" and r.path.endswith("?uploads")]
    assert len(created) == 2
    aborts = [r for r in seen if r.method == "DELETE" and "uploadId=" in r.path]
    assert len(aborts) == 1  # the first upload's, asked for whichever the key

    orphans = client.orphaned_uploads(name)
    left = store.uploads_left(bucket)
    if key == "may-abort":
        assert left == [] and orphans["orphanedUploads"] == []
    else:
        assert len(left) == 1, left
        [orphan] = orphans["orphanedUploads"]
        assert orphan["uploadId"] == left[0] and orphan["uploadId"] in aborts[0].path
        assert orphan["bucket"] == bucket and orphan["key"] == record["key"]
        assert orphan["eventId"] == record["eventId"]
        assert "AbortMultipartUpload" in orphan["reason"] and "AccessDenied" in orphan["reason"]
        rule = orphans["lifecycleRule"]["Rules"][0]
        assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
        assert "put-bucket-lifecycle-configuration" in orphans["lifecycleCommand"]
        # The dashboard says so, with the command that adds the rule.
        server, api_key = s3dest
        browser = sign_in(server.url, api_key)
        try:
            page = browser.get("/destinations").text
        finally:
            browser.close()
        assert 'data-orphans="1"' in page and "put-bucket-lifecycle-configuration" in page
        # The rule is one the store accepts as it is given.
        store.admin.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration=orphans["lifecycleRule"]
        )


# -- create-only for every size (in-process writer) -------------------------------------------


def _dest(store: Store, bucket: str, creds: Credentials, endpoint: str) -> S3Destination:
    return S3Destination(
        bucket=bucket,
        region=store.region,
        access_key_id=creds.access_key_id,
        secret_access_key=creds.secret_access_key,
        endpoint_url=endpoint,
        create_only=True,
    )


def _chunks(size: int, chunk: int = 1024 * 1024) -> Iterator[bytes]:
    """A stored large body as the worker streams it: JSON, in database-sized chunks."""
    body = b'{"data":{"pad":"' + b"y" * (size - 20) + b'"}}'
    for start in range(0, len(body), chunk):
        yield body[start : start + chunk]


def test_create_only_40_mib_body_meets_an_existing_key(store: Store, tmp_path: Path) -> None:
    bucket = store.new_bucket()
    creds = store.may_abort(bucket)
    key = "contacts/same-operation.json"  # no event-id in it: a collision is a message error
    meta = {"event-id": str(uuid.uuid4()), "objectname": "contacts"}
    with running_fault_proxy(store.endpoint) as proxy:
        dest = _dest(store, bucket, creds, proxy.url)
        put_object(dest, ObjectRequest(key=key, body=b'{"data":{}}', metadata={}, event_id="e0"))
        large = ObjectRequest(key=key, body=_chunks(40 * 1024 * 1024), metadata=meta, event_id="e1")
        if store.name == "moto":
            with pytest.raises(MessageDeliveryError) as collision:
                put_object(dest, large)
            assert "collision" in collision.value.message
        else:
            put_object(dest, large)  # RGW 16 ignores the header on CompleteMultipartUpload
        seen = proxy.seen()

    [complete] = [r for r in seen if r.method == "POST" and "uploadId=" in r.path]
    assert complete.headers.get("if-none-match") == "*"
    assert len(part_numbers(seen)) == 8  # 40 MiB in 5 MiB parts: not refused, not one PUT
    stored = store.admin.head_object(Bucket=bucket, Key=key)
    if store.name == "moto":
        assert stored["ContentLength"] == len(b'{"data":{}}')  # not overwritten
        assert store.uploads_left(bucket) == []  # the unneeded upload was aborted


def test_create_only_multipart_retry_of_the_same_message_is_already_present(
    s3_server: S3Server, bucket: str
) -> None:
    # moto only: RGW 16 ignores If-None-Match on CompleteMultipartUpload (see above).
    creds = s3_server.putonly_user(bucket)
    event_id = str(uuid.uuid4())
    key = f"contacts/{event_id}.json"
    options = MultipartOptions(part_size=TEST_PART_BYTES)
    store = Store("moto", s3_server.endpoint, s3_server.region, s3_server.client(), s3_server)
    dest = _dest(store, bucket, creds, s3_server.endpoint)
    first = send_put(
        prepare_put(dest, ObjectRequest(key, _chunks(3 * TEST_PART_BYTES), {}, event_id)), options
    )
    assert first.etag and first.etag.endswith('-3"') and not first.already_present
    again = send_put(
        prepare_put(dest, ObjectRequest(key, _chunks(3 * TEST_PART_BYTES, 999), {}, event_id)),
        options,
    )
    assert again.already_present and again.etag is None
    # This key may not abort the second, unneeded upload: it is the orphan to list.
    assert again.orphan is not None and again.orphan.key == key
    assert store.uploads_left(bucket) == [again.orphan.upload_id]
    head = store.admin.head_object(Bucket=bucket, Key=key)
    assert head["ETag"] == first.etag  # the first upload's object, untouched
