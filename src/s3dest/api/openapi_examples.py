"""The request examples of the OpenAPI document: the product page's own read and subscribe
messages, its destination fields, its key templates and its amp.yaml (`openapi_docs`
puts them in; tests/unit/test_openapi_docs.py checks that s3dest accepts them)."""

from __future__ import annotations

import copy
from typing import Any

from s3dest.keys.samples import READ_EXAMPLE, SUBSCRIBE_EXAMPLE

PAGE_TEMPLATE = "join('/', [metadata.objectName, time.date, metadata.\"event-id\"])"


def _incoming(example: dict[str, Any]) -> dict[str, Any]:
    """A page message as sent: routed to the destination of the create example (routing by
    amp.yaml would need a manifest that names its integration)."""
    message: dict[str, Any] = copy.deepcopy(example["data"])
    message.pop("projectId", None)  # s3dest stamps the API key's project
    message["destination"] = "ampersandS3Bucket"
    return message


def message_examples() -> dict[str, Any]:
    """The product page's read and subscribe messages, as a producer sends them."""
    read, subscribe = _incoming(READ_EXAMPLE), _incoming(SUBSCRIBE_EXAMPLE)
    return {
        "read": {"summary": "A read action message (HubSpot contacts)", "value": read},
        "subscribe": {
            "summary": "A subscribe action message (a Salesforce account update)",
            "value": subscribe,
        },
        "batch": {
            "summary": "Several messages at once (all or nothing)",
            "value": {"messages": [read, subscribe]},
        },
    }


DESTINATION_EXAMPLE = {
    "name": "ampersandS3Bucket",
    "bucket": "ampersand-integration-bucket",
    "region": "us-west-2",
    "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
    "secretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "keyTemplate": PAGE_TEMPLATE,
    "storageClass": "STANDARD_IA",
}
#: Batching with the defaults spelled out: objects of up to 1,000 messages or 8 MiB, written
#: at the latest a minute after their first message arrived.
BATCH_EXAMPLE = {"maxMessages": 1000, "maxBytes": 8388608, "maxSeconds": 60, "compression": "gzip"}
MANIFEST_EXAMPLE = """\
specVersion: 1.0.0
integrations:
  - name: salesforceToS3
    displayName: Salesforce to S3
    provider: salesforce
    read:
      objects:
        - objectName: account
          destination: ampersandS3Bucket
        - objectName: contact
          destination: ampersandS3Bucket
"""


def request_examples() -> dict[tuple[str, str], dict[str, Any]]:
    """(method, path) → {media type: OpenAPI `examples`}."""
    return {
        ("post", "/v1/messages"): {"application/json": message_examples()},
        ("post", "/v1/destinations"): {
            "application/json": {
                "keys": {"summary": "With an access key pair", "value": DESTINATION_EXAMPLE},
                "role": {
                    "summary": "With an IAM role instead of keys",
                    "value": {
                        "name": "ampersandS3Bucket",
                        "bucket": "ampersand-integration-bucket",
                        "region": "us-west-2",
                        "roleArn": "arn:aws:iam::123456789012:role/ampersand-writer",
                    },
                },
                "batch": {
                    "summary": "Many messages in one gzip JSON Lines object",
                    "value": {**DESTINATION_EXAMPLE, "batch": BATCH_EXAMPLE},
                },
            }
        },
        ("patch", "/v1/destinations/{ref}"): {
            "application/json": {
                "template": {
                    "summary": "Group objects by synced object name",
                    "value": {
                        "keyTemplate": "join('/', [metadata.objectName, metadata.\"event-id\"])"
                    },
                },
                "batch": {
                    "summary": "Batch: zstd objects of up to 5,000 messages, at least every 5 "
                    "minutes (the keys left out keep their values)",
                    "value": {
                        "batch": {"maxMessages": 5000, "maxSeconds": 300, "compression": "zstd"}
                    },
                },
                "unbatch": {
                    "summary": "Stop batching: one object per message again",
                    "value": {"batch": None},
                },
                "rotate": {
                    "summary": "Rotate the secret",
                    "value": {
                        "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
                        "secretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                    },
                },
            }
        },
        ("post", "/v1/key-templates/preview"): {
            "application/json": {
                "date": {"summary": "Partition by date", "value": {"keyTemplate": PAGE_TEMPLATE}},
                "payload": {
                    "summary": "Use a field from the payload, for your message",
                    "value": {
                        "keyTemplate": "join('/', [data.installationId, metadata.operationId])",
                        "message": message_examples()["read"]["value"],
                    },
                },
            }
        },
        ("put", "/v1/manifest"): {
            "application/yaml": {
                "page": {"summary": "The product page's amp.yaml", "value": MANIFEST_EXAMPLE}
            }
        },
        ("post", "/v1/api-keys"): {
            "application/json": {"ci": {"summary": "A key for CI", "value": {"name": "ci"}}}
        },
    }
