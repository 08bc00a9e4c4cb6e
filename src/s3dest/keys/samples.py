"""The product page's two example messages, used to validate and preview key templates.

The read example's event time and event-id are the ones the page's default key shows
(``2025-10-14T02:58:59.323405308Z_0199e0a8-149d-7ee9-9f50-0514403517f9.json``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from s3dest.keys.context import key_context
from s3dest.messages import EventMetadata, parse_rfc3339_ns

SAMPLE_PROJECT_ID = "9482e676-4874-43a4-beea-fa8081d13a07"
SAMPLE_DESTINATION_ID = "0199e0a8-0000-7000-8000-000000000001"

READ_EXAMPLE: dict[str, Any] = {
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
                    "city": "Brisbane",
                },
                "raw": {
                    "archived": False,
                    "createdAt": "2023-10-26T17:55:48.301Z",
                    "id": "438",
                    "properties": {
                        "firstname": "Maria",
                        "lastname": "Johnson",
                        "email": "maria@example.com",
                        "city": "Brisbane",
                        "createdate": "2023-10-26T17:55:48.301Z",
                    },
                },
            }
        ],
    }
}

SUBSCRIBE_EXAMPLE: dict[str, Any] = {
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
                "fields": {"id": "001Dp00000ZDgmxIAD", "annualrevenue": None, "website": None},
                "subscribeEventType": "update",
                "providerEventType": "UPDATE",
                "raw": {
                    "Id": "001Dp00000ZDgmxIAD",
                    "AnnualRevenue": None,
                    "Description": "Notes about the account",
                    "Name": "Acme Corp",
                    "Website": None,
                    "attributes": {
                        "type": "Account",
                        "url": "/services/data/v59.0/sobjects/Account/001Dp00000ZDgmxIAD",
                    },
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
                        "transactionKey": "00051705-2e99-d1e5-7e7a-48e3af682d07",
                    },
                    "Description": "Notes about the account",
                    "LastModifiedDate": "2025-04-10T23:22:25.000Z",
                },
            }
        ],
    }
}

READ_EXAMPLE_EVENT_ID = "0199e0a8-149d-7ee9-9f50-0514403517f9"
SUBSCRIBE_EXAMPLE_EVENT_ID = "01962203-0368-7123-9a2b-3c4d5e6f7081"


@dataclass(frozen=True)
class SampleMessage:
    data: dict[str, Any]
    metadata: EventMetadata
    event_time_ns: int


def _sample(example: dict[str, Any], event_id: str) -> SampleMessage:
    data = copy.deepcopy(example["data"])
    event_time_ns = parse_rfc3339_ns(data["operationTime"])
    metadata = EventMetadata.of(
        data,
        destination_id=SAMPLE_DESTINATION_ID,
        event_id=event_id,
        event_time_ns=event_time_ns,
        connection_id="",
        topic="",
    )
    return SampleMessage(data=data, metadata=metadata, event_time_ns=event_time_ns)


def sample_read() -> SampleMessage:
    return _sample(READ_EXAMPLE, READ_EXAMPLE_EVENT_ID)


def sample_subscribe() -> SampleMessage:
    return _sample(SUBSCRIBE_EXAMPLE, SUBSCRIBE_EXAMPLE_EVENT_ID)


def sample_contexts() -> tuple[dict[str, Any], dict[str, Any]]:
    """The key contexts of the read and the subscribe sample, in that order."""
    read, subscribe = sample_read(), sample_subscribe()
    return (
        key_context(read.metadata, read.event_time_ns, read.data),
        key_context(subscribe.metadata, subscribe.event_time_ns, subscribe.data),
    )
