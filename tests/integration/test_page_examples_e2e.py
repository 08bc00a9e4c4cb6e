"""The product page's two example messages, reproduced end to end from raw inputs alone.

A producer sends what the SaaS API gave it — a HubSpot CRM contact (``raw``) for the
read example, a Salesforce Account record (``raw``) and its Change Data Capture event
(``rawEvent``) for the subscribe example — routed by an amp.yaml that selects the
page's fields. s3dest builds ``fields``, ``subscribeEventType`` and
``providerEventType`` and writes the object; read back from the bucket it is the
page's example byte for byte, except ``projectId``, which s3dest sets from the API
key's project. Over real HTTP against ``s3dest serve`` on SQLite and PostgreSQL.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import orjson
from tests.support.builders import create_destination
from tests.support.moto_server import S3Server
from tests.support.polling import wait_delivered
from tests.support.s3dest_server import S3destProcess
from tests.support.samples import DESTINATION
from tests.support.shared_server import shared_server_fixtures

# one server per database for the module; each test has a project of its own
s3dest_env, s3dest_server = shared_server_fixtures()

# Both copied literally from reference/s3-destination-doc.txt ("Message format").
PAGE_READ_EXAMPLE = """
{
  "data": {
    "action": "read",
    "projectId": "9482e676-4874-43a4-beea-fa8081d13a07",
    "provider": "hubspot",
    "groupRef": "group-id-1",
    "groupName": "group-name-1",
    "consumerRef": "user-id",
    "consumerName": "user-name",
    "installationId": "085353b1-07f1-4209-b471-7e028c0a68c8",
    "installationUpdateTime": "2025-10-14T02:58:55.595861Z",
    "objectName": "contacts",
    "operationId": "0199e0a8-149d-7ee9-9f50-0514403517f9",
    "operationTime": "2025-10-14T02:58:59.323405308Z",
    "result": [
      {
        "fields": {
          "id": "438",
          "firstname": "Maria",
          "lastname": "Johnson",
          "email": "maria@example.com",
          "city": "Brisbane"
        },
        "raw": {
          "archived": false,
          "createdAt": "2023-10-26T17:55:48.301Z",
          "id": "438",
          "properties": {
            "firstname": "Maria",
            "lastname": "Johnson",
            "email": "maria@example.com",
            "city": "Brisbane",
            "createdate": "2023-10-26T17:55:48.301Z"
          }
        }
      }
    ]
  }
}
"""

PAGE_SUBSCRIBE_EXAMPLE = """
{
  "data": {
    "action": "subscribe",
    "projectId": "9482e676-4874-43a4-beea-fa8081d13a07",
    "provider": "salesforce",
    "groupRef": "webhook-demo-group-id",
    "groupName": "webhook-demo-group-name",
    "consumerRef": "user-id",
    "consumerName": "user-name",
    "installationId": "0c9230e1-8fbe-4b28-bf10-2beee8fbf4ce",
    "installationUpdateTime": "2025-04-10T23:00:52.618406Z",
    "objectName": "company",
    "operationTime": "2025-04-10T23:22:25.000Z",
    "result": [
      {
        "fields": {
          "id": "001Dp00000ZDgmxIAD",
          "annualrevenue": null,
          "website": null
        },
        "subscribeEventType": "update",
        "providerEventType": "UPDATE",
        "raw": {
          "Id": "001Dp00000ZDgmxIAD",
          "AnnualRevenue": null,
          "Description": "Notes about the account",
          "Name": "Acme Corp",
          "Website": null,
          "attributes": {
            "type": "Account",
            "url": "/services/data/v59.0/sobjects/Account/001Dp00000ZDgmxIAD"
          }
        },
        "rawEvent": {
          "ChangeEventHeader": {
            "changeOrigin": "com/salesforce/api/soap/63.0;client=SfdcInternalAPI/",
            "changeType": "UPDATE",
            "changedFields": ["Description", "LastModifiedDate"],
            "commitNumber": 12041091891110,
            "commitTimestamp": 1744327345000,
            "commitUser": "005Dp000003Cd1SIAS",
            "entityName": "Account",
            "recordId": "001Dp00000ZDgmxIAD",
            "sequenceNumber": 1,
            "transactionKey": "00051705-2e99-d1e5-7e7a-48e3af682d07"
          },
          "Description": "Notes about the account",
          "LastModifiedDate": "2025-04-10T23:22:25.000Z"
        }
      }
    ]
  }
}
"""

# HubSpot contacts selected as on the page; the page's amp.yaml for Salesforce reads, plus
# a subscribe object for Account, published to consumers as "company" (the page's
# subscribe example says objectName "company" about a Salesforce Account).
AMP_YAML = """\
specVersion: 1.0.0
integrations:
  - name: hubspotToS3
    displayName: HubSpot to S3
    provider: hubspot
    read:
      objects:
        - objectName: contacts
          destination: ampersandS3Bucket
          requiredFields:
            - fieldName: firstname
            - fieldName: lastname
            - fieldName: email
          optionalFields:
            - fieldName: city
  - name: salesforceToS3
    displayName: Salesforce to S3
    provider: salesforce
    read:
      objects:
        - objectName: account
          destination: ampersandS3Bucket
        - objectName: contact
          destination: ampersandS3Bucket
    subscribe:
      objects:
        - objectName: account
          mapToName: company
          destination: ampersandS3Bucket
          optionalFields:
            - fieldName: annualrevenue
            - fieldName: website
"""

DELIVERY_TIMEOUT = 90.0  # generous: two shared cores, PostgreSQL, moto
DEFAULT_KEY = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z_[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-"
    r"[89ab][0-9a-f]{3}-[0-9a-f]{12}\.json$"
)


def page(example: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(example)
    return value


def incoming(example: str, integration: str, item: dict[str, Any]) -> dict[str, Any]:
    """The producer's message for a page example: its envelope, no projectId, one item."""
    data = page(example)["data"]
    message = {k: v for k, v in data.items() if k not in ("projectId", "result")}
    return {"integration": integration, **message, "result": [item]}


def raw_inputs(example: str) -> dict[str, Any]:
    """Only what the SaaS API returned: the example's raw (and rawEvent)."""
    item = page(example)["data"]["result"][0]
    return {k: item[k] for k in ("raw", "rawEvent") if k in item}


def expected(example: str, project_id: str) -> dict[str, Any]:
    body = page(example)
    body["data"]["projectId"] = project_id  # in place: keeps the page's key order
    return body


def ordered(value: Any) -> Any:
    """`value` with every object as a list of (key, value) pairs: compares key order too."""
    if isinstance(value, dict):
        return [(k, ordered(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [ordered(v) for v in value]
    return value


def fetch(s3_server: S3Server, bucket: str, key: str) -> tuple[bytes, dict[str, Any]]:
    got = s3_server.client().get_object(Bucket=bucket, Key=key)
    return got["Body"].read(), got


def test_page_examples_from_raw_inputs_alone(
    s3dest_server: S3destProcess,
    project: tuple[str, str],
    s3_server: S3Server,
    bucket: str,
) -> None:
    project_id, api_key = project
    read_message = incoming(PAGE_READ_EXAMPLE, "hubspotToS3", raw_inputs(PAGE_READ_EXAMPLE))
    subscribe_message = incoming(
        PAGE_SUBSCRIBE_EXAMPLE, "salesforceToS3", raw_inputs(PAGE_SUBSCRIBE_EXAMPLE)
    )
    # Nothing normalised is sent: no fields, no event types, no destination.
    assert list(read_message["result"][0]) == ["raw"]
    assert list(subscribe_message["result"][0]) == ["raw", "rawEvent"]
    assert "destination" not in read_message and "destination" not in subscribe_message
    assert "operationId" not in subscribe_message  # the page's subscribe example has none

    with s3dest_server.client(api_key) as client:
        destination = create_destination(client, s3_server, bucket, DESTINATION)
        client.put_manifest(AMP_YAML)
        accepted = client.send_batch([read_message, subscribe_message])
        assert [a["destinationId"] for a in accepted] == [destination["id"]] * 2
        read_record, subscribe_record = wait_delivered(
            client, [a["eventId"] for a in accepted], DELIVERY_TIMEOUT
        )

    for record, example, operation_id in (
        (read_record, PAGE_READ_EXAMPLE, "0199e0a8-149d-7ee9-9f50-0514403517f9"),
        (subscribe_record, PAGE_SUBSCRIBE_EXAMPLE, None),
    ):
        assert record["bucket"] == bucket
        assert DEFAULT_KEY.match(record["key"]), record["key"]
        assert record["key"] == f"{record['eventTime']}_{record['eventId']}.json"
        body, got = fetch(s3_server, bucket, record["key"])
        written = json.loads(body)
        want = expected(example, project_id)

        # The derived parts first, for a readable failure...
        item, want_item = written["data"]["result"][0], want["data"]["result"][0]
        assert item["fields"] == want_item["fields"]
        assert list(item["fields"]) == list(want_item["fields"])
        for key in ("subscribeEventType", "providerEventType"):
            assert item.get(key) == want_item.get(key), key
        # ...then the whole object: every field, in the page's order...
        assert written == want
        assert ordered(written) == ordered(want)
        # ...written as compact UTF-8 JSON.
        assert body == orjson.dumps(want)

        assert got["ContentType"] == "application/json"
        meta = got["Metadata"]
        assert meta["projectid"] == project_id
        assert meta["destinationid"] == destination["id"]
        assert meta["installationid"] == want["data"]["installationId"]
        assert meta["objectname"] == want["data"]["objectName"]
        assert meta["event-id"] == record["eventId"]
        assert meta.get("operationid", "") == (operation_id or "")
        assert meta["timestamp"].isdigit()


def test_given_fields_are_kept_as_given(
    s3dest_server: S3destProcess,
    project: tuple[str, str],
    s3_server: S3Server,
    bucket: str,
) -> None:
    """An item that already has `fields` keeps them: no renaming, no selection."""
    _, api_key = project
    given_read = {
        "id": "438",
        "FirstName": "Maria",  # not lower-cased
        "phone": "+61 7 5555 0100",  # not selected by the manifest, still kept
    }
    read_item = {"fields": given_read, **raw_inputs(PAGE_READ_EXAMPLE)}
    given_subscribe = {"Id": "001Dp00000ZDgmxIAD", "Description": "Notes about the account"}
    subscribe_item = {"fields": given_subscribe, **raw_inputs(PAGE_SUBSCRIBE_EXAMPLE)}

    with s3dest_server.client(api_key) as client:
        create_destination(client, s3_server, bucket, DESTINATION)
        client.put_manifest(AMP_YAML)
        accepted = client.send_batch(
            [
                incoming(PAGE_READ_EXAMPLE, "hubspotToS3", read_item),
                incoming(PAGE_SUBSCRIBE_EXAMPLE, "salesforceToS3", subscribe_item),
            ]
        )
        records = wait_delivered(client, [a["eventId"] for a in accepted], DELIVERY_TIMEOUT)

    read_body, _ = fetch(s3_server, bucket, records[0]["key"])
    [read_written] = json.loads(read_body)["data"]["result"]
    assert read_written == {"fields": given_read, **raw_inputs(PAGE_READ_EXAMPLE)}
    assert list(read_written["fields"]) == list(given_read)

    subscribe_body, _ = fetch(s3_server, bucket, records[1]["key"])
    [subscribe_written] = json.loads(subscribe_body)["data"]["result"]
    # fields as given; the event types still come from the rawEvent.
    want = copy.deepcopy(
        {
            "fields": given_subscribe,
            "subscribeEventType": "update",
            "providerEventType": "UPDATE",
            **raw_inputs(PAGE_SUBSCRIBE_EXAMPLE),
        }
    )
    assert subscribe_written == want
    assert ordered(subscribe_written) == ordered(want)
