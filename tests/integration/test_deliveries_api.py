"""Deliveries at scale and idempotent ingest (issue 15, items 6 and 11) through a real
`s3dest serve`, moto S3, on SQLite and PostgreSQL.

One server per database does it all, as a user would: send the same file twice with an
`Idempotency-Key` (one object), page and search the deliveries, be told about a wrong
parameter, export, delete the object in the bucket and have it re-delivered — and see
that another project can neither see nor re-deliver any of it.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import orjson
from tests.support.builders import create_destination, message
from tests.support.moto_server import S3Server
from tests.support.polling import wait_delivered, wait_for_state
from tests.support.s3dest_server import S3destEnv, S3destProcess
from tests.support.shared_server import shared_server_fixtures

# one server per database for the module; each test has a project of its own
s3dest_env, s3dest_server = shared_server_fixtures()


def _objects(s3_server: S3Server, bucket: str) -> list[str]:
    listed = s3_server.client().list_objects_v2(Bucket=bucket)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def test_deliveries_search_export_redelivery_and_idempotent_ingest(
    s3dest_server: S3destProcess,
    s3dest_env: S3destEnv,
    project: tuple[str, str],
    s3_server: S3Server,
    bucket: str,
) -> None:
    _, key = project
    _, other_key = s3dest_env.create_project("other")
    api = httpx.Client(
        base_url=s3dest_server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60
    )
    other = httpx.Client(
        base_url=s3dest_server.url, headers={"Authorization": f"Bearer {other_key}"}, timeout=60
    )
    with api, other:
        create_destination(api, s3_server, bucket)

        # -- item 11: the same file twice under one key is stored once ----------------
        batch = orjson.dumps(
            {"messages": [message(n, installationId=f"inst-{n % 2}") for n in range(7)]}
        )
        headers = {"Idempotency-Key": "upload-2026-12-01", "Content-Type": "application/json"}
        first = api.post("/v1/messages", content=batch, headers=headers)
        assert first.status_code == 202, first.text
        assert "Idempotent-Replayed" not in first.headers
        again = api.post("/v1/messages", content=batch, headers=headers)
        assert again.status_code == 202, again.text
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == first.json()
        ids = [a["eventId"] for a in first.json()["accepted"]]
        records = wait_delivered(api, ids)
        assert len(_objects(s3_server, bucket)) == 7  # no second object for the repeat
        changed = api.post(
            "/v1/messages", content=batch.replace(b"inst-1", b"inst-9"), headers=headers
        )
        assert changed.status_code == 422, changed.text
        assert "different body" in changed.json()["error"]["message"]
        assert "new key" in changed.json()["error"]["fields"]["Idempotency-Key"]
        # Keys are per project: the other project's same key stores its own messages.
        create_destination(other, s3_server, bucket, "d")
        theirs = other.post("/v1/messages", content=batch, headers=headers)
        assert theirs.status_code == 202 and theirs.json() != first.json()
        bad_key = api.post("/v1/messages", content=batch, headers={"Idempotency-Key": "a b"})
        assert bad_key.status_code == 422
        assert "visible ASCII" in bad_key.json()["error"]["fields"]["Idempotency-Key"]

        # -- item 6: pages by cursor, newest first, every record once -----------------
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            page = api.get("/v1/deliveries", params=params)
            assert page.status_code == 200, page.text
            seen += [r["eventId"] for r in page.json()["deliveries"]]
            pages += 1
            cursor = page.json()["nextCursor"]
            if cursor is None:
                break
        assert seen == sorted(ids, reverse=True) and pages == 3

        def found(**params: Any) -> list[str]:
            got = api.get("/v1/deliveries", params=params)
            assert got.status_code == 200, got.text
            return [r["eventId"] for r in got.json()["deliveries"]]

        assert found(eventId=ids[2]) == [ids[2]]
        assert set(found(installationId="inst-1")) == {ids[1], ids[3], ids[5]}
        assert found(key=records[4]["key"]) == [ids[4]]
        assert len(found(objectName="account", state="delivered", destination="d")) == 7
        assert found(until="2000-01-01T00:00:00Z") == []
        assert len(found(since=str(records[0]["acceptedAt"] - 1))) == 7

        # Wrong parameters: a 422 naming each one and the fix.
        for params, field, says in (
            ({"limit": 5000}, "limit", "from 1 to 1000"),
            ({"stat": "parked"}, "stat", "not a parameter"),
            ({"cursor": "abc"}, "cursor", "nextCursor"),
            ({"since": "yesterday"}, "since", "RFC 3339"),
        ):
            refused = api.get("/v1/deliveries", params=params)
            assert refused.status_code == 422, (params, refused.text)
            error = refused.json()["error"]
            assert says in error["fields"][field], error
            assert field in error["message"] or field == "cursor", error

        # -- export: JSON Lines and CSV, streamed, of the filter and project only --------
        lines = api.get("/v1/deliveries/export", params={"format": "jsonl"})
        assert lines.headers["content-type"].startswith("application/x-ndjson")
        assert [orjson.loads(line)["eventId"] for line in lines.content.splitlines()] == seen
        table = api.get(
            "/v1/deliveries/export", params={"format": "csv", "installationId": "inst-0"}
        )
        assert "attachment" in table.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(table.text)))
        assert {r["eventId"] for r in rows} == {ids[0], ids[2], ids[4], ids[6]}
        assert all(r["bucket"] == bucket for r in rows)

        # -- re-delivery: the customer deleted an object; it is written again ----------
        lost = records[3]
        s3_server.client().delete_object(Bucket=bucket, Key=lost["key"])
        assert other.post(f"/v1/messages/{ids[3]}/redeliver").status_code == 404
        taken = other.post("/v1/deliveries/redeliver", json={"eventIds": [ids[3]]})
        assert taken.json()["notFound"] == [ids[3]]  # another project's: does not exist
        queued = api.post(f"/v1/messages/{ids[3]}/redeliver")
        assert queued.status_code == 200, queued.text
        back = wait_for_state(api, ids[3], "delivered")
        assert back["key"] == lost["key"] and back["attempts"] == lost["attempts"] + 1
        assert lost["key"] in _objects(s3_server, bucket)
        body = s3_server.client().get_object(Bucket=bucket, Key=lost["key"])["Body"].read()
        assert orjson.loads(body)["data"]["installationId"] == "inst-1"
        assert [h["outcome"] for h in back["history"]] == ["delivered", "delivered"]

        several = api.post(
            "/v1/deliveries/redeliver", json={"eventIds": [ids[0], ids[1], "nope"]}
        ).json()
        assert several["eventIds"] == [ids[0], ids[1]] and several["notFound"] == ["nope"]
        ranged = api.post(
            "/v1/deliveries/redeliver",
            json={"since": str(records[0]["acceptedAt"] - 1), "installationId": "inst-0"},
        )
        assert ranged.status_code == 200, ranged.text
        wait_delivered(api, ids)
        audit = api.get("/v1/audit").json()["entries"]
        actions = [e["action"] for e in audit]
        assert actions.count("deliveries.redelivered") == 2 and "message.redelivered" in actions
        assert not [
            e for e in other.get("/v1/audit").json()["entries"] if "redeliver" in e["action"]
        ]
