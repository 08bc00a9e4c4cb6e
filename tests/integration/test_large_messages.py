"""Large messages over HTTP: spooled, checked and compacted in bounded memory, stored in
chunks, uploaded with multipart — never whole in memory — and byte-exact in the bucket."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from tests.support.builders import create_destination
from tests.support.load import TreePeak, reset_peak, vm_kib, warm_ingest_workers
from tests.support.moto_server import S3Server
from tests.support.polling import wait_delivered
from tests.support.s3dest_server import S3destEnv, S3destProcess, serve
from tests.support.samples import amp_yaml

from s3dest.ingest.envelope import ProjectView
from s3dest.ingest.normalise import prepare
from s3dest.manifest import parse_manifest
from s3dest.store.ingest import RoutingTarget as _Destination

MiB = 1024 * 1024


def _record(i: int) -> dict[str, Any]:
    return {
        "fields": {
            "id": f"{i:08d}",
            "name": f"Account {i} " + "x" * 700,
            "amount": i * 1.25,
            "active": i % 2 == 0,
            "tags": ["a", "b", None],
            "nested": {"n": i, "s": 'é€😀"\\'},
        }
    }


def _write_message(path: Path, expected: Path, project_id: str, records: int) -> None:
    """The request (routing fields first, loose whitespace) and the object s3dest must write."""
    envelope = {
        "destination": "big",
        "action": "read",
        "provider": "salesforce",
        "installationId": "inst-1",
        "objectName": "account",
        "connectionId": "conn-1",
    }
    data = {
        "action": "read",
        "projectId": project_id,
        "provider": "salesforce",
        "installationId": "inst-1",
        "objectName": "account",
    }
    with path.open("wb") as req, expected.open("wb") as exp:
        head = orjson.dumps(envelope, option=orjson.OPT_INDENT_2)
        req.write(head[:-1] + b',\n  "result": [\n')
        exp.write(orjson.dumps({"data": {**data, "result": []}})[:-3])
        for i in range(records):
            record = _record(i)
            if i:
                req.write(b",\n")
                exp.write(b",")
            req.write(b"    " + orjson.dumps(record, option=orjson.OPT_INDENT_2))
            exp.write(orjson.dumps(record))
        req.write(b"\n  ]\n}\n")
        exp.write(b"]}}")


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(MiB):
            yield chunk


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    for chunk in _file_chunks(path):
        digest.update(chunk)
    return digest.hexdigest()


def _object_sha256(s3: S3Server, bucket: str, key: str) -> tuple[str, int]:
    body = s3.client().get_object(Bucket=bucket, Key=key)["Body"]
    digest = hashlib.sha256()
    size = 0
    for chunk in iter(lambda: body.read(MiB), b""):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def _vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def _post_file(server: S3destProcess, api_key: str, path: Path) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/messages",
        content=_file_chunks(path),
        headers={
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Content-Length": str(path.stat().st_size),
        },
        timeout=300,
    )


@pytest.mark.timeout(1200)
@pytest.mark.parametrize(
    ("database_url", "records"),
    [("postgres", 68_000), ("sqlite", 225_000)],  # ~60 MiB and ~200 MiB requests
    indirect=["database_url"],
    ids=["60MiB-postgres", "200MiB-sqlite"],
)
def test_a_large_message_arrives_intact_in_bounded_memory(
    s3dest_env: S3destEnv,
    project: tuple[str, str],
    s3_server: S3Server,
    bucket: str,
    tmp_path: Path,
    records: int,
) -> None:
    project_id, api_key = project
    # A lease far shorter than the upload: the worker must keep extending it, or the reaper
    # would hand the message out again mid-upload (a second attempt would show).
    s3dest_env.extra["S3DEST_LEASE_SECONDS"] = "2"
    s3dest_env.exec_process = True  # its peak RSS is measured: a process of its own imports
    server = serve(s3dest_env, tmp_path)
    try:
        with server.client(api_key) as client:
            create_destination(client, s3_server, bucket, "big")
        request, expected = tmp_path / "request.json", tmp_path / "expected.json"
        _write_message(request, expected, project_id, records=records)
        mib = request.stat().st_size / MiB
        assert mib > 60

        assert server.proc is not None
        pid = server.proc.pid
        # Ingest runs in the server's worker processes (s3dest.ingest.processes): started
        # first, and their peaks counted with the server's.
        warm_ingest_workers(server.url, api_key)
        tree = TreePeak(pid).start()
        exact = reset_peak(pid)
        baseline = (vm_kib(pid, "VmRSS") if exact else vm_kib(pid, "VmHWM")) / 1024
        started = time.monotonic()
        response = _post_file(server, api_key, request)
        assert response.status_code == 202, response.text
        (accepted,) = response.json()["accepted"]
        accept_s = time.monotonic() - started
        peak_ingest = baseline + tree.rise_mib()
        with server.client(api_key) as client:
            (record,) = wait_delivered(client, [accepted["eventId"]], 600)
        elapsed = time.monotonic() - started

        assert record["size"] == expected.stat().st_size
        assert accepted["eventId"] in record["key"]
        assert record["attempts"] == 1 and len(record["history"]) == 1, record["history"]
        digest, size = _object_sha256(s3_server, bucket, record["key"])
        assert size == expected.stat().st_size
        assert digest == _sha256_file(expected)
        peak = _vm_hwm_mb(pid)
        upload_s = record["history"][0]["finishedAt"] - record["history"][0]["startedAt"]
        print(
            f"\n{mib:.0f} MiB message: 202 after {accept_s:.1f}s, delivered after {elapsed:.1f}s "
            f"(upload {upload_s:.1f}s with a 2 s lease), server peak RSS {peak:.0f} MB "
            f"({peak_ingest:.0f} MB by the 202), baseline {baseline:.0f} MB, exact {exact}"
        )
        # Held whole on either side, the body alone would raise the peak RSS by its own
        # size. Streamed, measured on 2 busy cores: 61 MiB on PostgreSQL raised it by ~4 MB
        # by the 202 and ~29 MB with the multipart upload; 203 MiB on SQLite by ~83 MB,
        # all of it by the 202. The bound, three quarters of the body, is a generous
        # margin over those (1.6x and 1.8x), stated as such, and still below the body.
        # Planted bugs (61 MiB, PostgreSQL): the ingest route keeping `body.read()` alive
        # until the message is stored (rise 66 MB by the 202), and the writer reading the
        # whole spooled body into one bytes object before the PUT (rise 118 MB); each
        # fails here. (Was `peak < 250` MB: the 61 MiB case passed with the body whole.)
        bound = mib * 3 / 4
        assert peak_ingest - baseline < bound, (
            f"ingest raised the peak RSS by {peak_ingest - baseline:.0f} MB for {mib:.0f} MiB"
        )
        assert peak - baseline < bound, (
            f"delivery raised the peak RSS by {peak - baseline:.0f} MB for {mib:.0f} MiB"
        )
        assert "lease lost" not in server.log()
    finally:
        server.kill()


# -- the streamed path makes exactly what the small path makes ---------------------------------

_AMP_YAML = amp_yaml(
    "sfToS3", "salesforce", {"account": "big"}, required_fields={"account": ["Name"]}
)
_VIEW = ProjectView(
    by_ref={"big": _Destination(id="dest-1", name="big", hold=False)},
    manifest=parse_manifest(_AMP_YAML),
)


def _as_request(example: dict[str, Any], **extra: Any) -> dict[str, Any]:
    data = {k: v for k, v in example["data"].items() if k != "projectId"}
    return {**extra, **data}


def _both_paths(tmp_path: Path, message: Any) -> tuple[Any, Any]:
    """(small path result or error, streamed path result or error) for one message."""
    from s3dest.errors import MessageInvalid
    from s3dest.ingest.large import prepare_large

    small: Any
    large: Any
    try:
        small = prepare("proj-1", message, _VIEW).row
    except MessageInvalid as exc:
        small = exc.fields
    source = tmp_path / "m.json"
    source.write_bytes(orjson.dumps(message, option=orjson.OPT_INDENT_2))
    try:
        with source.open("rb") as f:
            prepared = prepare_large("proj-1", f, _VIEW, spool_dir=str(tmp_path))
        with prepared.body:
            large = {**prepared.row, "body": prepared.body.read()}
    except MessageInvalid as exc:
        large = exc.fields
    return small, large


def _sample_messages() -> list[Any]:
    from s3dest.keys.samples import READ_EXAMPLE, SUBSCRIBE_EXAMPLE

    hubspot_raw_only = _as_request(READ_EXAMPLE, destination="big")
    hubspot_raw_only["result"] = [{"raw": item["raw"]} for item in hubspot_raw_only["result"]]
    salesforce_event_only = _as_request(SUBSCRIBE_EXAMPLE, destination="big", topic="t")
    salesforce_event_only["result"] = [
        {"raw": item["raw"], "rawEvent": item["rawEvent"]}
        for item in salesforce_event_only["result"]
    ]
    fields_first = {
        "result": [{"fields": {"id": "1", "n": 1.5, "big": 2**62, "u": "é€😀"}}] * 3,
        "objectName": "account",
        "installationId": "i",
        "provider": "generic",
        "destination": "big",
        "action": "read",
    }
    routed_with_selection = {
        "integration": "sfToS3",
        "action": "read",
        "provider": "salesforce",
        "installationId": "i",
        "objectName": "account",
        "result": [
            {"raw": {"Id": "001", "Name": "Acme", "Website": None, "attributes": {"t": "A"}}}
        ],
    }
    return [
        routed_with_selection,
        _as_request(READ_EXAMPLE, destination="big"),
        _as_request(SUBSCRIBE_EXAMPLE, destination="big", connectionId="c-1"),
        hubspot_raw_only,
        salesforce_event_only,
        fields_first,
    ]


@pytest.mark.parametrize("index", range(6))
def test_streamed_body_is_byte_for_byte_the_small_path_body(tmp_path: Path, index: int) -> None:
    message = _sample_messages()[index]
    small, large = _both_paths(tmp_path, message)
    assert isinstance(small, dict) and "event_id" in small, small
    assert large["body"] == small["body"]
    assert large["body_size"] == len(small["body"])
    assert large["chunked"] is True and small["chunked"] is False
    data = orjson.loads(small["body"])["data"]
    assert data["projectId"] == "proj-1" and "destination" not in data
    # The envelope is the data object without result: what key templates can use.
    assert orjson.loads(large["envelope"]) == {k: v for k, v in data.items() if k != "result"}
    for column in ("destination_id", "state", "connection_id", "topic", "object_name"):
        assert large[column] == small[column]


@pytest.mark.parametrize(
    "change",
    [
        {"destination": "nope"},
        {"provider": ""},
        {"action": "write"},
        {"result": {"not": "a list"}},
        {"unknown": 1},
        {"projectId": "someone-else"},
        {"result": [{"fields": {"id": "1"}}, {"fields": 3}, {"bogus": 1}]},
        {"action": "subscribe", "provider": "generic", "result": [{"fields": {"id": "1"}}]},
    ],
    ids=lambda c: ",".join(c),
)
def test_streamed_message_errors_match_the_small_path(
    tmp_path: Path, change: dict[str, Any]
) -> None:
    base = {
        "destination": "big",
        "action": "read",
        "provider": "generic",
        "installationId": "i",
        "objectName": "account",
        "result": [{"fields": {"id": "1"}}],
    }
    small, large = _both_paths(tmp_path, {**base, **change})
    assert isinstance(small, dict) and "event_id" not in small, small
    assert large == small


@pytest.mark.parametrize(
    "body",
    [b'{"destination": "big", "result": [', b"[1, 2", b'{"a": 1} {"b": 2}', b'"just a string"'],
)
def test_streamed_invalid_json_is_rejected(tmp_path: Path, body: bytes) -> None:
    from s3dest.errors import MessageInvalid
    from s3dest.ingest.large import prepare_large

    source = tmp_path / "bad.json"
    source.write_bytes(body)
    with source.open("rb") as f, pytest.raises(MessageInvalid):
        prepare_large("proj-1", f, _VIEW, spool_dir=str(tmp_path))


# -- over HTTP with a small inline limit: every path through the route -------------------------


@pytest.fixture
def small_inline_env(s3dest_env: S3destEnv) -> S3destEnv:
    s3dest_env.extra["S3DEST_INLINE_BODY_BYTES"] = "2048"
    return s3dest_env


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_spooled_requests_over_http(
    small_inline_env: S3destEnv,
    project: tuple[str, str],
    s3_server: S3Server,
    bucket: str,
    tmp_path: Path,
) -> None:
    project_id, api_key = project
    server = serve(small_inline_env, tmp_path)
    try:
        with server.client(api_key) as client:
            create_destination(client, s3_server, bucket, "big")
        headers = {"Authorization": f"Bearer {api_key}"}
        big = {
            "destination": "big",
            "action": "read",
            "provider": "generic",
            "installationId": "i",
            "objectName": "account",
            "result": [_record(i) for i in range(20)],
        }
        body = orjson.dumps(big)
        assert len(body) > 2048

        def post(content: Any, **extra: str) -> httpx.Response:
            return httpx.post(
                f"{server.url}/v1/messages",
                content=content,
                headers={**headers, "Content-Type": "application/json", **extra},
                timeout=60,
            )

        # Declared large: streamed into chunks.
        one = post(body)
        assert one.status_code == 202, one.text
        # No Content-Length (chunked transfer): spooled once it passes the limit.
        two = post(iter([body[:1000], body[1000:]]))
        assert two.status_code == 202, two.text
        # A batch above the inline limit still works, all or nothing.
        batch = post(orjson.dumps({"messages": [big, big]}))
        assert batch.status_code == 202, batch.text
        assert len(batch.json()["accepted"]) == 2
        bad_batch = post(orjson.dumps({"messages": [big, {**big, "provider": ""}]}))
        assert bad_batch.status_code == 422, bad_batch.text
        assert set(bad_batch.json()["error"]["fields"]) == {"messages[1].provider"}
        # An invalid large message is refused whole with the field named; nothing stored.
        bad = post(orjson.dumps({**big, "result": [*big["result"], {"fields": 7}]}))
        assert bad.status_code == 422, bad.text
        assert set(bad.json()["error"]["fields"]) == {"result[20].fields"}
        broken = post(body[:-10])
        assert broken.status_code == 422, broken.text

        ids = [
            one.json()["accepted"][0]["eventId"],
            two.json()["accepted"][0]["eventId"],
            *(a["eventId"] for a in batch.json()["accepted"]),
        ]
        expected = orjson.dumps(
            {
                "data": {
                    "action": "read",
                    "projectId": project_id,
                    **{k: v for k, v in big.items() if k not in ("destination", "action")},
                }
            }
        )
        for event_id in ids:
            with server.client(api_key) as client:
                (record,) = wait_delivered(client, [event_id], 60)
            got = s3_server.client().get_object(Bucket=bucket, Key=record["key"])
            assert got["Body"].read() == expected
        with server.client(api_key) as client:
            assert len(client.deliveries(limit=100)) == 4  # the refused ones left no trace
        leftovers = list((small_inline_env.data_dir / "tmp").iterdir())
        assert leftovers == [], "spool files must not outlive their request"
    finally:
        server.kill()
