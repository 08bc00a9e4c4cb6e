"""Builders: destinations and messages as the API takes them, one of each for every test
(and the benchmarks).

    create_destination(client, s3_server, bucket)           # "d", put-only IAM user on moto
    create_destination(client, s3_server, bucket, "big", keyTemplate="...")
    message(7)                                              # a Salesforce account read to "d"
    send_in_batches(client, (message(i) for i in range(500)))
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from s3dest.client import Client
from tests.support.moto_server import Credentials, S3Server

# An AWS example access key pair (no such account): for destinations nobody writes to.
EXAMPLE_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def destination_fields(
    s3: S3Server,
    bucket: str,
    name: str = "d",
    *,
    endpoint: str | None = None,
    creds: Credentials | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """The body of POST /v1/destinations for `bucket` on the moto server, with `creds` or a
    fresh PutObject-only IAM user; `endpoint` puts something (a fault proxy) in front of
    moto."""
    creds = creds or s3.putonly_user(bucket)
    fields: dict[str, Any] = {
        "name": name,
        "bucket": bucket,
        "region": s3.region,
        "accessKeyId": creds.access_key_id,
        "secretAccessKey": creds.secret_access_key,
        "endpointUrl": endpoint or s3.endpoint,
    }
    fields.update(overrides)
    return fields


def example_destination_fields(name: str, **overrides: Any) -> dict[str, Any]:
    """A destination on AWS with the documentation's example keys (nothing is written)."""
    fields: dict[str, Any] = {
        "name": name,
        "bucket": "ampersand-integration-bucket",
        "region": "us-west-2",
        "accessKeyId": EXAMPLE_ACCESS_KEY_ID,
        "secretAccessKey": EXAMPLE_SECRET,
    }
    fields.update(overrides)
    return fields


def create_destination(
    api: Client | httpx.Client,
    s3: S3Server,
    bucket: str,
    name: str = "d",
    *,
    endpoint: str | None = None,
    creds: Credentials | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Create a destination (see `destination_fields`) and return it as the API shows it."""
    fields = destination_fields(s3, bucket, name, endpoint=endpoint, creds=creds, **overrides)
    if isinstance(api, Client):
        return api.create_destination(**fields)
    response = api.post("/v1/destinations", json=fields)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def manifest_routing(destination: str) -> str:
    """An amp.yaml whose one integration reads Salesforce accounts into `destination`."""
    return f"""\
specVersion: 1.0.0
integrations:
  - name: crmToS3
    provider: salesforce
    read:
      objects:
        - objectName: account
          destination: {destination}
"""


def message(
    n: int = 0, destination: str = "d", *, pad: int = 200, **overrides: Any
) -> dict[str, Any]:
    """A Salesforce account read of one record (`n` its id, `pad` bytes of padding),
    addressed to `destination`."""
    body: dict[str, Any] = {
        "destination": destination,
        "action": "read",
        "provider": "salesforce",
        "installationId": "inst-1",
        "groupRef": f"group-{n % 7}",
        "objectName": "account",
        "result": [{"fields": {"id": str(n), "name": f"Account {n}", "pad": "x" * pad}}],
        **overrides,
    }
    return body


def contact_message(destination: str, **extra: Any) -> dict[str, Any]:
    """A HubSpot contacts read with a fresh installation and operation id (the dashboard's
    sample). An extra of None leaves that field out."""
    body: dict[str, Any] = {
        "destination": destination,
        "action": "read",
        "provider": "hubspot",
        "objectName": "contacts",
        "installationId": "inst-" + uuid.uuid4().hex[:8],
        "groupRef": "group-id-1",
        "groupName": "group-name-1",
        "operationId": str(uuid.uuid4()),
        "result": [{"fields": {"id": "438", "email": "maria@example.com"}}],
    }
    body.update(extra)
    return {k: v for k, v in body.items() if v is not None}


def salesforce_read(
    object_name: str, records: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    """A read message as a producer sends it under the page's amp.yaml: routed by
    integration (salesforceToS3), no destination; one result item per raw record."""
    return {
        "integration": "salesforceToS3",
        "action": "read",
        "provider": "salesforce",
        "objectName": object_name,
        "groupRef": "group-id-1",
        "groupName": "group-name-1",
        "consumerRef": "user-id",
        "consumerName": "user-name",
        "installationId": "085353b1-07f1-4209-b471-7e028c0a68c8",
        "installationUpdateTime": "2025-10-14T02:58:55.595861Z",
        "operationId": "0199e0a8-149d-7ee9-9f50-0514403517f9",
        "operationTime": "2025-10-14T02:58:59.323405308Z",
        "result": [{"raw": record} for record in records],
        **extra,
    }


_ROUTING = ("destination", "integration", "connectionId", "topic")


def data_of(message: Mapping[str, Any], *, project_id: str) -> dict[str, Any]:
    """The stored ``data`` object of an ingest message (what s3dest writes under "data"):
    action and projectId first, then the message's fields without its routing fields."""
    data: dict[str, Any] = {"action": message["action"], "projectId": project_id}
    data.update({k: v for k, v in message.items() if k not in _ROUTING and k != "action"})
    return data


def send_in_batches(
    client: Client, messages: Iterable[Mapping[str, Any]], size: int = 100
) -> list[str]:
    """POST the messages `size` at a time; their event ids, in order."""
    ids: list[str] = []
    batch: list[Mapping[str, Any]] = []
    for m in messages:
        batch.append(m)
        if len(batch) == size:
            ids += [a["eventId"] for a in client.send_batch(batch)]
            batch = []
    if batch:
        ids += [a["eventId"] for a in client.send_batch(batch)]
    return ids
