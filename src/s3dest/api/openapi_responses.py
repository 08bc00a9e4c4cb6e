"""The response examples of the OpenAPI document: what s3dest answers to the request
examples of `openapi_examples` (the product page's destination, messages and amp.yaml).

Written from a live server's answers, with the page's ids and names in place of a test
run's. tests/unit/test_openapi_docs.py validates each against its response schema (no
field the schema lacks, none it requires missing), and tests/integration/test_openapi.py
checks that a live answer has the same fields as its example.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from s3dest.api.openapi_examples import BATCH_EXAMPLE, MANIFEST_EXAMPLE, PAGE_TEMPLATE
from s3dest.keys.samples import (
    READ_EXAMPLE,
    READ_EXAMPLE_EVENT_ID,
    SAMPLE_DESTINATION_ID,
    SUBSCRIBE_EXAMPLE,
    SUBSCRIBE_EXAMPLE_EVENT_ID,
)
from s3dest.manifest import parse_manifest

BUCKET = "ampersand-integration-bucket"
# The read message is accepted when the page's default key says (2025-10-14T02:58:59.32Z).
ACCEPTED_AT = 1760410739.323405
_CREATED_AT = ACCEPTED_AT - 600.0
_KEY_ID = "0199e0a0-6a1f-7b2c-9d3e-4f5a6b7c8d9e"
_WEBHOOK_ID = "0199e0a1-2b3c-7d4e-8f5a-6b7c8d9e0f1a"
_NEXT_CURSOR = "eyJ2IjoxLCJhZnRlciI6IjAxOTllMGE4LTE0OWQtN2VlOS05ZjUwLTA1MTQ0MDM1MTdmOSJ9"
_KEY = f"contacts/2025-10-14/{READ_EXAMPLE_EVENT_ID}"
_SIGNATURE = (
    "The secret access key does not belong to access key id AKIA…MPLE: AWS could not "
    "verify the request's signature. Paste the secret again exactly as it was shown when "
    "the key was created (no spaces or line breaks), or create a new access key."
)

DESTINATION: dict[str, Any] = {
    "id": SAMPLE_DESTINATION_ID,
    "name": "ampersandS3Bucket",
    "bucket": BUCKET,
    "region": "us-west-2",
    "accessKeyId": "AKIA…MPLE",
    "hasSessionToken": False,
    "keyTemplate": PAGE_TEMPLATE,
    "storageClass": "STANDARD_IA",
    "endpointUrl": None,
    "writeMode": "overwrite",
    "enabled": True,
    "status": "healthy",
    "diagnosis": None,
    "failingSince": None,
    "verifiedAt": _CREATED_AT + 30.0,
    "warnings": [],
    "createdAt": _CREATED_AT,
    "updatedAt": _CREATED_AT,
    "roleArn": None,
    "externalId": None,
    "serverSideEncryption": None,
    "kmsKeyId": None,
    "bucketKeyEnabled": None,
    "acl": None,
    "tags": None,
    "batch": None,
    "requiredActions": ["s3:PutObject"],
    "iamPolicy": {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"}
        ],
    },
    "trustPolicy": None,
    "s3destPrincipal": None,
    "s3destIdentityNote": None,
}
_UNTESTED = {**DESTINATION, "status": "untested", "verifiedAt": None}
# As the API shows a batch: every key, the format included.
_BATCHED = {**DESTINATION, "batch": {**BATCH_EXAMPLE, "maxSeconds": 60.0, "format": "jsonl"}}
_FAILING = {
    **DESTINATION,
    "status": "failing",
    "diagnosis": _SIGNATURE,
    "failingSince": ACCEPTED_AT + 5.0,
}

DELIVERED: dict[str, Any] = {
    "eventId": READ_EXAMPLE_EVENT_ID,
    "destinationId": SAMPLE_DESTINATION_ID,
    "state": "delivered",
    "eventTime": "2025-10-14T02:58:59.323405308Z",
    "acceptedAt": ACCEPTED_AT,
    "objectName": "contacts",
    "size": 776,
    "attempts": 1,
    "nextAttemptAt": None,
    "bucket": BUCKET,
    "key": _KEY,
    "etag": '"92a235c1c407c675774ae9f95f5650d2"',
    "versionId": None,
    "lastError": None,
    "lastErrorKind": None,
    "deliveredAt": ACCEPTED_AT + 0.051,
    "updatedAt": ACCEPTED_AT + 0.051,
    "installationId": READ_EXAMPLE["data"]["installationId"],
    "batch": None,
    "history": [
        {
            "worker": "web-1:14222:430be1",
            "startedAt": ACCEPTED_AT + 0.021,
            "finishedAt": ACCEPTED_AT + 0.051,
            "outcome": "delivered",
            "error": None,
        }
    ],
}
# Parked under a template of objectName and operationId: the page's subscribe message has
# no operationId, so its key ends in '/'.
_PARKED_ERROR = (
    "the key 'company/' has an empty path segment (a leading or trailing '/' or '//'); a "
    "field used in the key template is probably empty for this message. Change the template "
    '(for example use metadata."event-id") and replay the message.'
)
PARKED: dict[str, Any] = {
    **DELIVERED,
    "eventId": SUBSCRIBE_EXAMPLE_EVENT_ID,
    "state": "parked",
    "eventTime": "2025-04-10T23:22:25.000000000Z",
    "acceptedAt": 1744327345.0,
    "objectName": "company",
    "size": 1268,
    "key": "company/",
    "etag": None,
    "lastError": _PARKED_ERROR,
    "lastErrorKind": "message",
    "deliveredAt": None,
    "updatedAt": 1744327345.021,
    "installationId": SUBSCRIBE_EXAMPLE["data"]["installationId"],
    "history": [
        {
            "worker": "web-1:14222:430be1",
            "startedAt": 1744327345.02,
            "finishedAt": 1744327345.021,
            "outcome": "parked",
            "error": _PARKED_ERROR,
        }
    ],
}
# A destination with batch (SPEC §9): the read message was the batch's first (its id is
# the batch's), and this one its second line; its record has the batch object's key.
_IN_BATCH: dict[str, Any] = {
    **DELIVERED,
    "eventId": "0199e0a8-14a2-7c31-8e4f-6a7b8c9d0e1f",
    "size": 812,
    "key": f"{_KEY}.jsonl.gz",
    "batch": {"id": READ_EXAMPLE_EVENT_ID, "line": 1},
    "history": [],  # the batch's first message made the attempts (its own record has them)
}
_REDELIVERING = {
    **DELIVERED,
    "state": "queued",
    "nextAttemptAt": ACCEPTED_AT + 3600.0,
    "updatedAt": ACCEPTED_AT + 3600.0,
}
_REPLAYED = {**PARKED, "state": "queued", "nextAttemptAt": 1744330945.0, "updatedAt": 1744330945.0}


def _listed(record: dict[str, Any]) -> dict[str, Any]:
    """A record as lists show it: without its attempts (GET /v1/messages/{eventId} has them)."""
    return {**record, "history": None}


_TEST_KEY = "s3dest-connection-test/0199e0a8-0618-703e-811c-cbd742d71979.json"
_TESTED = {
    "failed": {
        "summary": "The secret is wrong",
        "value": {"ok": False, "key": _TEST_KEY, "diagnosis": _SIGNATURE, "etag": None},
    },
    "ok": {
        "summary": "Connection OK",
        "value": {
            "ok": True,
            "key": _TEST_KEY,
            "diagnosis": None,
            "etag": '"361f41c6e16f002cba147ca95e48efde"',
        },
    },
}
_LIFECYCLE_RULE = {
    "Rules": [
        {
            "ID": "abort-incomplete-multipart-uploads",
            "Status": "Enabled",
            "Filter": {},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
        }
    ]
}
_ORPHANS = {
    "orphanedUploads": [
        {
            "bucket": BUCKET,
            "key": f"contacts/2025-10-14/{READ_EXAMPLE_EVENT_ID}",
            "uploadId": "2~q9tRxUe0XbYAx7fNfn2qGbG3hH4eK5",
            "eventId": READ_EXAMPLE_EVENT_ID,
            "reason": "AccessDenied: s3:AbortMultipartUpload is not allowed",
            "recordedAt": ACCEPTED_AT + 2.0,
        }
    ],
    "lifecycleRule": _LIFECYCLE_RULE,
    "lifecycleCommand": "aws s3api put-bucket-lifecycle-configuration --bucket "
    f"{BUCKET} --lifecycle-configuration '"
    '{"Rules":[{"ID":"abort-incomplete-multipart-uploads","Status":"Enabled","Filter":{},'
    '"AbortIncompleteMultipartUpload":{"DaysAfterInitiation":1}}]}\'',
    "advice": "Multipart uploads that s3dest could not abort keep their parts (billed as "
    "storage) until they are aborted. Add the lifecycle rule to the bucket: S3 then aborts "
    "every upload left incomplete for 1 day(s). Or allow s3:AbortMultipartUpload on the "
    "bucket's objects, and s3dest aborts what it cannot finish.",
}
_EVENTS = ["destination.failing", "destination.recovered", "message.parked", "summary.daily"]
_WEBHOOK = {
    "id": _WEBHOOK_ID,
    "url": "https://hooks.example.com/s3dest",
    "events": _EVENTS,
    "description": "page the on-call engineer",
    "createdAt": _CREATED_AT + 60.0,
}
_ACTOR = {"actor": f"key:{_KEY_ID}", "keyPrefix": "s3d_gZZh"}
_AUDIT = [
    {
        "id": "0199e0a8-26d9-70ab-8b3b-f6ea49fc6480",
        "at": ACCEPTED_AT + 30.0,
        **_ACTOR,
        "action": "manifest.applied",
        "target": "manifest",
        "changes": {
            "bytes": len(MANIFEST_EXAMPLE.encode()),
            "sha256": "2c31b315b2e99d943a2ddf2360c16c2a6fd739e63222e9866e1a4d66740c18b1",
            "previousSha256": None,
        },
    },
    {
        "id": "0199e0a8-063d-730c-9e17-a94908c51e63",
        "at": ACCEPTED_AT + 20.0,
        **_ACTOR,
        "action": "destination.tested",
        "target": f"destination:{SAMPLE_DESTINATION_ID}",
        "changes": {"ok": True},
    },
    {
        "id": "0199e0a0-7b2c-7d3e-8f4a-5b6c7d8e9f0a",
        "at": _CREATED_AT,
        **_ACTOR,
        "action": "destination.created",
        "target": f"destination:{SAMPLE_DESTINATION_ID}",
        "changes": {
            "name": {"to": "ampersandS3Bucket"},
            "bucket": {"to": BUCKET},
            "secretAccessKey": {"to": "***"},
        },
    },
]
_CSV = (
    "eventId,destinationId,state,eventTime,acceptedAt,installationId,objectName,size,"
    "attempts,bucket,key,etag,versionId,lastError,lastErrorKind,deliveredAt,updatedAt,"
    "batchId,batchLine\r\n"
    f"{READ_EXAMPLE_EVENT_ID},{SAMPLE_DESTINATION_ID},delivered,2025-10-14T02:58:59.323405308Z,"
    f"{ACCEPTED_AT},{DELIVERED['installationId']},contacts,776,1,{BUCKET},{_KEY},"
    '"""92a235c1c407c675774ae9f95f5650d2""",,,,'
    f"{DELIVERED['deliveredAt']},{DELIVERED['updatedAt']},,\r\n"
)


def _json_line(record: dict[str, Any]) -> str:
    """A record as the export writes it: compact, one a line, without `history`."""
    exported = {name: value for name, value in record.items() if name != "history"}
    return json.dumps(exported, ensure_ascii=False, separators=(",", ":")) + "\n"


def _one(summary: str, value: Any) -> dict[str, Any]:
    return {"example": {"summary": summary, "value": value}}


def _json(examples: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {"application/json": examples}


def response_examples() -> dict[tuple[str, str, str], dict[str, dict[str, Any]]]:
    """(method, path, status) → {media type: OpenAPI `examples`} for every 2xx answer with a
    body (a copy: the document may be changed by whoever reads it)."""
    dest = "/v1/destinations/{ref}"
    manifest = parse_manifest(MANIFEST_EXAMPLE).to_dict()  # as PUT and GET answer it
    found: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {
        ("get", "/healthz", "200"): _json(_one("Up", {"status": "ok"})),
        ("get", "/v1/destinations", "200"): _json(
            _one("One healthy destination", {"destinations": [DESTINATION]})
        ),
        ("post", "/v1/destinations", "201"): _json(
            _one("Created: untested until a connection test passes", _UNTESTED)
        ),
        ("get", dest, "200"): _json(
            {
                "healthy": {"summary": "Healthy", "value": DESTINATION},
                "failing": {"summary": "Failing, with its diagnosis", "value": _FAILING},
                "batched": {"summary": "Batching into gzip JSON Lines objects", "value": _BATCHED},
            }
        ),
        ("patch", dest, "200"): _json(_one("Updated", {**DESTINATION, "updatedAt": ACCEPTED_AT})),
        ("post", "/v1/destinations/test", "200"): _json(_TESTED),
        ("post", f"{dest}/test", "200"): _json(_TESTED),
        ("post", f"{dest}/replay", "200"): _json(
            _one("One parked message queued", {"replayed": 1})
        ),
        ("get", f"{dest}/orphaned-uploads", "200"): _json(_one("One upload left", _ORPHANS)),
        ("post", "/v1/key-templates/preview", "200"): _json(
            _one(
                "Partition by date",
                {
                    "key": _KEY,
                    "warnings": [],
                    "sampleKeys": {
                        "read": _KEY,
                        "subscribe": f"company/2025-04-10/{SUBSCRIBE_EXAMPLE_EVENT_ID}",
                    },
                    "recentKeys": [{"eventId": READ_EXAMPLE_EVENT_ID, "key": _KEY, "error": None}],
                },
            )
        ),
        ("get", "/v1/manifest", "200"): {
            "application/json": _one(
                "Accept: application/json", {"manifest": manifest, "source": MANIFEST_EXAMPLE}
            ),
            "application/yaml": _one("Accept: application/yaml", MANIFEST_EXAMPLE),
        },
        ("put", "/v1/manifest", "200"): _json(_one("Applied", {"manifest": manifest})),
        ("post", "/v1/messages", "202"): _json(
            _one(
                "The read and the subscribe message, accepted",
                {
                    "accepted": [
                        {"eventId": event_id, "destinationId": SAMPLE_DESTINATION_ID}
                        for event_id in (READ_EXAMPLE_EVENT_ID, SUBSCRIBE_EXAMPLE_EVENT_ID)
                    ]
                },
            )
        ),
        ("get", "/v1/messages/{event_id}", "200"): _json(
            {
                "delivered": {"summary": "Delivered", "value": DELIVERED},
                "parked": {"summary": "Parked: the template needs a fix", "value": PARKED},
                "batched": {"summary": "Delivered in a batch's object", "value": _IN_BATCH},
            }
        ),
        ("post", "/v1/messages/{event_id}/replay", "200"): _json(_one("Queued again", _REPLAYED)),
        ("get", "/v1/deliveries", "200"): _json(
            _one(
                "A page of two, with more to read",
                {"deliveries": [_listed(DELIVERED), _listed(PARKED)], "nextCursor": _NEXT_CURSOR},
            )
        ),
        ("get", "/v1/deliveries/export", "200"): {
            "application/x-ndjson": _one(
                "format=jsonl", _json_line(DELIVERED) + _json_line(PARKED)
            ),
            "text/csv": _one("format=csv", _CSV),
        },
        ("post", "/v1/deliveries/redeliver", "200"): _json(
            _one(
                "One written again, one not delivered",
                {
                    "redelivered": 1,
                    "eventIds": [READ_EXAMPLE_EVENT_ID],
                    "notDelivered": [SUBSCRIBE_EXAMPLE_EVENT_ID],
                    "notRetained": [],
                    "notFound": [],
                },
            )
        ),
        ("post", "/v1/messages/{event_id}/redeliver", "200"): _json(
            _one("Queued to be written again", _REDELIVERING)
        ),
        ("get", "/v1/api-keys", "200"): _json(
            _one(
                "Two keys",
                {
                    "keys": [
                        {
                            "id": _KEY_ID,
                            "name": "default",
                            "prefix": "s3d_gZZh",
                            "createdAt": _CREATED_AT - 60.0,
                            "lastUsedAt": ACCEPTED_AT,
                        },
                        {
                            "id": "0199e0a8-26b6-717c-9995-d71655163ddd",
                            "name": "ci",
                            "prefix": "s3d_QCbJ",
                            "createdAt": ACCEPTED_AT + 40.0,
                            "lastUsedAt": None,
                        },
                    ]
                },
            )
        ),
        ("post", "/v1/api-keys", "201"): _json(
            _one(
                "The key, shown this once",
                {
                    "id": "0199e0a8-26b6-717c-9995-d71655163ddd",
                    "name": "ci",
                    "key": "s3d_QCbJfLjSRWCEQSXdZbabuPMffQakEXAMPLEKEY0-8",
                },
            )
        ),
        ("get", "/v1/audit", "200"): _json(_one("The latest changes", {"entries": _AUDIT})),
        ("get", "/v1/webhooks", "200"): _json(_one("One endpoint", {"webhooks": [_WEBHOOK]})),
        ("post", "/v1/webhooks", "201"): _json(
            _one(
                "With its signing secret, shown this once",
                {**_WEBHOOK, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwEXAMPLE0AAA="},
            )
        ),
        ("get", "/v1/webhooks/{webhook_id}/deliveries", "200"): _json(
            _one(
                "A parked message announced, a failing destination being retried",
                {
                    "deliveries": [
                        {
                            "id": "0199e0a8-2737-7204-bd0e-3f6a3afa69af",
                            "type": "message.parked",
                            "state": "delivered",
                            "attempts": 1,
                            "lastStatus": 200,
                            "lastError": None,
                            "createdAt": 1744327345.021,
                            "nextAttemptAt": None,
                            "finishedAt": 1744327345.2,
                        },
                        {
                            "id": "0199e0a8-2738-7a05-8c1d-2e3f4a5b6c7d",
                            "type": "destination.failing",
                            "state": "pending",
                            "attempts": 2,
                            "lastStatus": 503,
                            "lastError": "the endpoint answered HTTP 503",
                            "createdAt": ACCEPTED_AT + 5.0,
                            "nextAttemptAt": ACCEPTED_AT + 65.0,
                            "finishedAt": None,
                        },
                    ]
                },
            )
        ),
        ("post", "/v1/webhooks/{webhook_id}/test", "200"): _json(
            {
                "ok": {
                    "summary": "The endpoint answered 200",
                    "value": {"ok": True, "status": 200, "error": None},
                },
                "refused": {
                    "summary": "The endpoint could not be reached",
                    "value": {
                        "ok": False,
                        "status": None,
                        "error": "could not connect: ConnectError: [Errno 111] Connection refused",
                    },
                },
            }
        ),
    }
    return copy.deepcopy(found)
