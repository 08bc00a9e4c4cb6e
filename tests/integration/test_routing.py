"""Routing by amp.yaml, as a user sees it (issue 5).

With the page's amp.yaml applied, messages that say only ``integration``, ``action`` and
``objectName`` land in ``ampersandS3Bucket``'s bucket; a message the manifest does not
route is refused at ingest (422 naming the integration / object) and nothing of its
batch is accepted. Over real HTTP against ``s3dest serve`` on SQLite and PostgreSQL: one
per database for the module, with a project and a bucket of its own per test.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from tests.support.builders import create_destination, salesforce_read
from tests.support.checks import bucket_keys, read_object
from tests.support.moto_server import S3Server
from tests.support.polling import wait_delivered
from tests.support.s3dest_server import S3destEnv, S3destProcess
from tests.support.samples import ACCOUNT, CONTACT, DESTINATION, PAGE_AMP_YAML
from tests.support.shared_server import shared_server_fixtures

s3dest_env, s3dest_server = shared_server_fixtures()

DELIVERY_TIMEOUT = 90.0  # generous: two shared cores, PostgreSQL, moto


def post_messages(server: S3destProcess, api_key: str, body: Any) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/messages",
        json=body,
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=60,
    )


# -- routed ------------------------------------------------------------------------------


def test_page_manifest_routes_account_and_contact_reads_to_the_bucket(
    s3dest_server: S3destProcess,
    project: tuple[str, str],
    s3_server: S3Server,
    bucket: str,
) -> None:
    project_id, api_key = project
    with s3dest_server.client(api_key) as client:
        destination = create_destination(client, s3_server, bucket, DESTINATION)
        client.put_manifest(PAGE_AMP_YAML)

        accepted = client.send_batch(
            [salesforce_read("account", [ACCOUNT]), salesforce_read("contact", [CONTACT])]
        )
        assert [a["destinationId"] for a in accepted] == [destination["id"]] * 2
        # One message at a time works the same, and object names ignore case.
        single = client.send(salesforce_read("Account", [ACCOUNT]))
        assert single["destinationId"] == destination["id"]
        records = wait_delivered(
            client, [a["eventId"] for a in [*accepted, single]], DELIVERY_TIMEOUT
        )

    assert {r["bucket"] for r in records} == {bucket}
    assert sorted(bucket_keys(s3_server, bucket)) == sorted(r["key"] for r in records)

    account, account_meta = read_object(s3_server, bucket, records[0]["key"])
    contact, contact_meta = read_object(s3_server, bucket, records[1]["key"])
    assert account["data"]["objectName"] == "account"
    assert contact["data"]["objectName"] == "contact"
    for body, meta, record in (
        (account, account_meta, records[0]),
        (contact, contact_meta, records[1]),
    ):
        data = body["data"]
        assert list(body) == ["data"]
        assert data["action"] == "read"
        assert data["projectId"] == project_id
        assert data["provider"] == "salesforce"
        # Routing keys are not part of the body: it has the page's fields only.
        assert "integration" not in data and "destination" not in data
        assert meta["projectid"] == project_id
        assert meta["destinationid"] == destination["id"]
        assert meta["event-id"] == record["eventId"]
        assert meta["objectname"] == data["objectName"]
    # The page's amp.yaml selects no fields, so every field of the record is kept.
    assert account["data"]["result"][0]["fields"] == {
        "id": "001Dp00000ZDgmxIAD",
        "name": "Acme Corp",
        "annualrevenue": 1200000,
        "website": "https://acme.example.com",
    }
    assert account["data"]["result"][0]["raw"] == ACCOUNT
    assert contact["data"]["result"][0]["fields"] == {
        "id": "003Dp000004XyZ1IAK",
        "firstname": "Maria",
        "lastname": "Johnson",
        "email": "maria@example.com",
        "accountid": "001Dp00000ZDgmxIAD",
    }


def test_explicit_destination_still_wins_over_the_manifest(
    s3dest_server: S3destProcess,
    project: tuple[str, str],
    s3_server: S3Server,
    bucket: str,
) -> None:
    _, api_key = project
    other_bucket = s3_server.create_bucket()
    with s3dest_server.client(api_key) as client:
        create_destination(client, s3_server, bucket, DESTINATION)
        other = create_destination(client, s3_server, other_bucket, name="archive")
        client.put_manifest(PAGE_AMP_YAML)
        sent = client.send(salesforce_read("account", [ACCOUNT], destination="archive"))
        assert sent["destinationId"] == other["id"]
        [record] = wait_delivered(client, [sent["eventId"]], DELIVERY_TIMEOUT)
    assert record["bucket"] == other_bucket
    assert sorted(bucket_keys(s3_server, other_bucket)) == [record["key"]]
    assert sorted(bucket_keys(s3_server, bucket)) == []


# -- not routed: refused, nothing accepted -----------------------------------------------


def assert_nothing_accepted(
    server: S3destProcess, api_key: str, s3_server: S3Server, bucket: str
) -> None:
    with server.client(api_key) as client:
        assert client.deliveries() == []
    assert sorted(bucket_keys(s3_server, bucket)) == []


@pytest.mark.parametrize(
    ("message", "field", "phrases"),
    [
        pytest.param(
            salesforce_read("opportunity", [ACCOUNT]),
            "objectName",
            ["'opportunity'", "'salesforceToS3'"],
            id="unknown-object",
        ),
        pytest.param(
            {**salesforce_read("account", [ACCOUNT]), "integration": "hubspotToS3"},
            "objectName",
            ["'account'", "'hubspotToS3'"],
            id="unknown-integration",
        ),
        pytest.param(
            {
                **salesforce_read("account", [ACCOUNT]),
                "action": "subscribe",
                "result": [{"raw": ACCOUNT, "subscribeEventType": "update"}],
            },
            "objectName",
            ["subscribe", "'account'", "'salesforceToS3'"],
            id="action-not-declared",
        ),
    ],
)
def test_unroutable_messages_are_refused_and_nothing_is_accepted(
    s3dest_server: S3destProcess,
    project: tuple[str, str],
    s3_server: S3Server,
    bucket: str,
    message: dict[str, Any],
    field: str,
    phrases: list[str],
) -> None:
    _, api_key = project
    with s3dest_server.client(api_key) as client:
        create_destination(client, s3_server, bucket, DESTINATION)
        client.put_manifest(PAGE_AMP_YAML)

    # Alone: 422 naming the integration and the object.
    response = post_messages(s3dest_server, api_key, message)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_message"
    assert field in error["fields"], error["fields"]
    for phrase in phrases:
        assert phrase in error["fields"][field], error["fields"]
        assert phrase in error["message"], error["message"]

    # In a batch with a routable message: the whole batch is refused, the bad one named.
    batch = {"messages": [salesforce_read("account", [ACCOUNT]), message]}
    response = post_messages(s3dest_server, api_key, batch)
    assert response.status_code == 422, response.text
    fields = response.json()["error"]["fields"]
    assert list(fields) == [f"messages[1].{field}"], fields

    time.sleep(1.0)  # a worker would have picked up anything accepted by now
    assert_nothing_accepted(s3dest_server, api_key, s3_server, bucket)


def test_without_a_manifest_integration_messages_are_refused(
    s3dest_server: S3destProcess,
    project: tuple[str, str],
    s3_server: S3Server,
    bucket: str,
) -> None:
    _, api_key = project
    with s3dest_server.client(api_key) as client:
        create_destination(client, s3_server, bucket, DESTINATION)
    response = post_messages(s3dest_server, api_key, salesforce_read("account", [ACCOUNT]))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert "integration" in error["fields"], error["fields"]
    assert "'salesforceToS3'" in error["fields"]["integration"]
    assert "amp.yaml" in error["fields"]["integration"]
    time.sleep(1.0)
    assert_nothing_accepted(s3dest_server, api_key, s3_server, bucket)


def test_manifest_of_another_project_does_not_route(
    s3dest_server: S3destProcess,
    s3dest_env: S3destEnv,
    project: tuple[str, str],
    s3_server: S3Server,
    bucket: str,
) -> None:
    _, api_key = project
    with s3dest_server.client(api_key) as client:
        create_destination(client, s3_server, bucket, DESTINATION)
        client.put_manifest(PAGE_AMP_YAML)
    _, other_key = s3dest_env.create_project("other")
    response = post_messages(s3dest_server, other_key, salesforce_read("account", [ACCOUNT]))
    assert response.status_code == 422, response.text
    assert "integration" in response.json()["error"]["fields"]
    time.sleep(1.0)
    assert_nothing_accepted(s3dest_server, api_key, s3_server, bucket)
