"""The words and examples of the OpenAPI document (/docs, /redoc, /openapi.json).

Written for the API's users, in one place, and applied to the generated document by
`describe`: a route's docstring and a model's docstring are written for s3dest's
maintainers (they name functions and modules), so an operation's and a schema's
description always come from here, never from them. A field keeps the description its
model gives (`Field(description=...)`) and gets one here when it has none. The examples
are the product page's own: its read and subscribe messages, its destination fields, its
amp.yaml and its key templates, and s3dest's answers to them (`openapi_responses`).
tests/unit/test_openapi_docs.py fails on a route, a parameter, a schema or a field without
a description, on a docstring that leaked, and on a 2xx JSON answer without an example.
"""

from __future__ import annotations

from typing import Any

from s3dest.api.openapi_examples import request_examples
from s3dest.api.openapi_responses import response_examples

#: (method, path) → (summary, description)
OPERATIONS: dict[tuple[str, str], tuple[str, str]] = {
    ("get", "/healthz"): (
        "Liveness",
        "200 while the process answers and its database does too. No API key needed.",
    ),
    ("get", "/metrics"): (
        "Prometheus metrics",
        "Delivery counters, latency histograms and queue depth in Prometheus text format. "
        "A project's API key sees only its own destinations' series; the operator token "
        "sees every project's.",
    ),
    ("get", "/v1/destinations"): (
        "List destinations",
        "Every S3 destination of the API key's project, oldest first, with its status "
        "(untested until a connection test passes or a message is delivered, healthy, "
        "failing with a diagnosis, or disabled). Secrets are never returned.",
    ),
    ("post", "/v1/destinations"): (
        "Create a destination",
        "An S3 bucket to deliver into, with the credentials that write to it (an access "
        "key pair, or an IAM role to assume). The fields are those of the product page's "
        "destination form; the answer says which IAM actions the configuration needs and "
        "gives the least-privilege policy.",
    ),
    ("get", "/v1/destinations/{ref}"): (
        "Show a destination",
        "One destination by its id or its name, with its status and the IAM policy it needs.",
    ),
    ("patch", "/v1/destinations/{ref}"): (
        "Update a destination",
        "Change some fields; the destination is validated again as a whole. A field left "
        "out keeps its value; null clears sessionToken, keyTemplate and endpointUrl. "
        "Updating a failing destination resumes its held messages. A change to what a "
        "write depends on (bucket, region, keys, session token, roleArn, endpointUrl, "
        "storageClass, writeMode, encryption, acl, tags) makes it untested again, "
        "verifiedAt null, until a write or a connection test succeeds with the new "
        "settings; a rename, enabled or a new keyTemplate keeps its status.",
    ),
    ("delete", "/v1/destinations/{ref}"): (
        "Delete a destination",
        "Refused (409) while messages still wait for it, unless force=true discards them.",
    ),
    ("post", "/v1/destinations/test"): (
        "Test settings before saving",
        "Takes the body of Create a destination, validates it the same way (the same 422 "
        "naming each field) and writes one small object under s3dest-connection-test/ with "
        "those settings (PutObject only), explaining any failure as the saved test does. "
        "Nothing is saved and secrets are never echoed. A role destination is tested once "
        "saved: its trust policy names the external id s3dest generates on save.",
    ),
    ("post", "/v1/destinations/{ref}/test"): (
        "Test the connection",
        "Writes one small object under s3dest-connection-test/ with the saved settings "
        "(PutObject only, nothing else) and explains any failure in plain language: the "
        "policy to attach, the region to use, the key that is wrong. A pass makes an "
        "untested destination healthy and clears a failure; a refusal marks it failing.",
    ),
    ("post", "/v1/destinations/{ref}/replay"): (
        "Replay parked messages",
        "Queues every parked message of the destination again (after its cause is fixed); "
        "returns how many.",
    ),
    ("get", "/v1/destinations/{ref}/orphaned-uploads"): (
        "List orphaned multipart uploads",
        "Multipart uploads left in the bucket because their abort was refused (a "
        "PutObject-only key may not abort), newest first, with the lifecycle rule that "
        "removes them.",
    ),
    ("post", "/v1/key-templates/preview"): (
        "Preview an object key",
        "Renders a JMESPath key template against a message you give (or the product "
        "page's sample read and subscribe messages) and returns the key, with warnings. "
        "The template sees three namespaces: metadata, time and data.",
    ),
    ("get", "/v1/manifest"): (
        "Get the manifest",
        "The project's amp.yaml as uploaded (Accept: application/yaml), or parsed with its "
        "source (Accept: application/json).",
    ),
    ("put", "/v1/manifest"): (
        "Upload the manifest",
        "The project's amp.yaml (YAML or JSON): which integration's objects go to which "
        "destination. It is validated, every destination it names must exist, and a "
        "mistake is reported with its line number.",
    ),
    ("post", "/v1/messages"): (
        "Send messages",
        'One message, or {"messages": [...]} (all or nothing). Each message is a read or a '
        "subscribe message as on the product page, routed by amp.yaml (integration, "
        "objectName) or by destination. 202 only once every message is stored durably: "
        "each then reaches the bucket, or waits while its destination is failing, or is "
        "parked with a reason.",
    ),
    ("get", "/v1/messages/{event_id}"): (
        "Show a message",
        "One message's delivery record: its state, object key, ETag, last error and every "
        "delivery attempt.",
    ),
    ("post", "/v1/messages/{event_id}/replay"): (
        "Replay a message",
        "Queues a parked message again (after its cause is fixed) and returns its record.",
    ),
    ("get", "/v1/deliveries"): (
        "List and search deliveries",
        "The project's delivery records, newest accepted first, a page at a time: pass "
        "nextCursor back as cursor for the next page (null on the last). Filters combine. "
        "Messages accepted while you page come before the first page, never inside the "
        "pages still to read. An unknown query parameter is a 422 naming it.",
    ),
    ("get", "/v1/deliveries/export"): (
        "Export deliveries",
        "Every record matching the same filters as the list, newest first, streamed as "
        "JSON Lines (one record per line) or CSV with a header row.",
    ),
    ("post", "/v1/deliveries/redeliver"): (
        "Re-deliver messages",
        "Writes delivered messages again, with the same key and body, as a new attempt, "
        "while their body is kept: up to 1000 eventIds, or a time range (since, optional "
        "until) with optional filters, up to 10,000 messages. Audited.",
    ),
    ("post", "/v1/messages/{event_id}/redeliver"): (
        "Re-deliver a message",
        "Writes one delivered message again (same key and body) and returns its record; "
        "409 when it is not delivered or its body is no longer kept.",
    ),
    ("get", "/v1/api-keys"): (
        "List API keys",
        "The project's live API keys: id, name, prefix and when each was created and last "
        "used. Never a key or its hash.",
    ),
    ("post", "/v1/api-keys"): (
        "Create an API key",
        "Issues another key for the project. The key is in this answer only: it is stored "
        "as a hash and cannot be shown again.",
    ),
    ("delete", "/v1/api-keys/{key_id}"): (
        "Revoke an API key",
        "Every s3dest process refuses the key within a second, and its dashboard sessions "
        "end. The project's last key cannot be revoked (409): create another first.",
    ),
    ("get", "/v1/audit"): (
        "Audit log",
        "Who changed what in the project (keys, destinations, replays, the manifest), "
        "newest first. Secrets never appear.",
    ),
    ("get", "/v1/webhooks"): (
        "List webhook endpoints",
        "The project's webhook endpoints, never their signing secrets.",
    ),
    ("post", "/v1/webhooks"): (
        "Register a webhook endpoint",
        "s3dest POSTs destination.failing, destination.recovered and message.parked "
        "events to it, and summary.daily (the day's counts per destination, once a UTC "
        "day) if its events name it, signed per Standard Webhooks. The answer carries "
        "the signing secret, this once.",
    ),
    ("get", "/v1/webhooks/{webhook_id}/deliveries"): (
        "List webhook deliveries",
        "The endpoint's latest deliveries, newest first: pending (with the next attempt's "
        "time), delivered, or failed (given up after three days).",
    ),
    ("delete", "/v1/webhooks/{webhook_id}"): (
        "Remove a webhook endpoint",
        "Its pending deliveries are not sent.",
    ),
    ("post", "/v1/webhooks/{webhook_id}/test"): (
        "Test a webhook endpoint",
        "Sends one signed webhook.test event now and reports the endpoint's answer.",
    ),
}

#: parameter name → description (the same meaning on every route that has it)
PARAMETERS: dict[str, str] = {
    "ref": "the destination's id or its name, e.g. ampersandS3Bucket",
    "event_id": "the message's event id, as POST /v1/messages returned it "
    "(also its x-amz-meta-event-id)",
    "key_id": "the API key's id (GET /v1/api-keys lists them)",
    "webhook_id": "the webhook endpoint's id (GET /v1/webhooks lists them)",
    "force": "also discard the messages still waiting for the destination",
    "destination": "only this destination's records: its id or its name",
    "state": "only records in this state",
    "limit": "at most this many records (1 to 1000)",
    "eventId": "only this message (its event id)",
    "installationId": "only messages of this installation (its installationId)",
    "objectName": "only messages of this object, e.g. contacts",
    "key": "only records whose S3 object key starts with this",
    "since": "only messages accepted at or after this time: RFC 3339 with an offset "
    "(2026-12-01T19:00:00Z) or Unix seconds",
    "until": "only messages accepted before this time: RFC 3339 with an offset or Unix seconds",
    "cursor": "nextCursor of the previous page, unchanged",
    "format": "jsonl (JSON Lines) or csv",
}

#: component schema → description (replaces any docstring)
SCHEMAS: dict[str, str] = {
    "AcceptedItem": "One accepted message: its event id and the destination it goes to.",
    "AcceptedResponse": "The messages accepted, in the order sent.",
    "ApiKeyCreate": "A new API key's name.",
    "ApiKeyCreated": "A new API key: shown in this answer only.",
    "ApiKeyList": "The project's live API keys.",
    "ApiKeyPublic": "An API key as listed: never the key itself.",
    "Attempt": "One delivery attempt of a message.",
    "BatchRef": "The batch object a message is written in (destinations with batch): the "
    "batch's id and the message's line in the object.",
    "AuditEntry": "One change to the project's configuration.",
    "AuditList": "Audit entries, newest first.",
    "BatchBody": "Batching: the messages of a destination grouped into one JSON Lines "
    "object per batch, written when it has maxMessages messages or maxBytes bytes, or its "
    "first message has waited maxSeconds. Every key is optional.",
    "BatchPublic": "A destination's batching, every key shown (defaults filled in).",
    "DeliveryPage": "One page of delivery records, newest accepted first.",
    "RedeliverRequest": "Which delivered messages to write again: eventIds, or a time "
    "range (since, optional until) with optional filters; not both.",
    "RedeliverResult": "What a re-delivery did, message by message.",
    "DestinationCreate": "A new S3 destination. Give the bucket's access key pair, or "
    "roleArn for an IAM role that s3dest assumes.",
    "DestinationList": "The project's destinations.",
    "DestinationPublic": "A destination as the API shows it: the access key id masked, "
    "never the secret or the session token.",
    "DestinationUpdate": "The fields to change; a field left out keeps its value.",
    "Error": "Every error answer: a code, a message, and each wrong field with its fix.",
    "HTTPValidationError": "Not sent by s3dest: invalid input is answered with Error.",
    "ValidationError": "Not sent by s3dest: invalid input is answered with Error.",
    "IncomingMessage": "A read or subscribe message as the product page shows it under "
    '"data", plus how to route it: integration (with amp.yaml) or destination.',
    "ManifestApplied": "The amp.yaml just applied, parsed.",
    "ManifestView": "The project's amp.yaml, parsed and as uploaded.",
    "MessageRecord": "A message's delivery record.",
    "MessageState": "A message's delivery state: batching (waiting for its batch to fill: "
    "maxMessages, maxBytes or maxSeconds), batched (in a sealed batch, waiting for its object "
    "to be written), queued, delivering, retrying, held (its destination is failing), parked "
    "(needs a fix, then a replay) or delivered.",
    "OrphanedUpload": "A multipart upload s3dest could not abort.",
    "OrphanedUploads": "Orphaned multipart uploads and the lifecycle rule that removes them.",
    "PreviewRequest": "A key template and, optionally, a message to render it for.",
    "PreviewResponse": "The key a template gives, with advice.",
    "RecentKey": "The key a template gives one of the latest real messages, or why none.",
    "ReplayResult": "How many messages were queued again.",
    "ResultItem": "One record of result[]: the fields read, the provider's raw record, "
    "and for subscribe messages the event.",
    "TestResult": "The outcome of a connection test.",
    "WebhookCreate": "A new webhook endpoint.",
    "WebhookCreated": "A new webhook endpoint, with its signing secret (shown this once).",
    "WebhookDeliveries": "An endpoint's deliveries, newest first.",
    "WebhookDelivery": "One event sent (or being sent) to an endpoint.",
    "WebhookList": "The project's webhook endpoints.",
    "WebhookPublic": "A webhook endpoint as listed: never its secret.",
    "WebhookTest": "The endpoint's answer to a test event.",
}

_TIME = "Unix seconds"
#: component schema → field → description (where the model gives none)
FIELDS: dict[str, dict[str, str]] = {
    "DeliveryPage": {"deliveries": "the records of this page"},
    "RedeliverRequest": {
        "installationId": "only messages of this installation",
        "objectName": "only messages of this object",
    },
    "RedeliverResult": {"redelivered": "how many messages were queued to be written again"},
    "AcceptedItem": {
        "eventId": "the message's event id (a UUIDv7): the object's x-amz-meta-event-id",
        "destinationId": "the id of the destination it was routed to",
    },
    "AcceptedResponse": {"accepted": "one entry per message sent"},
    "ApiKeyCreated": {"id": "the key's id", "name": "what the key is for"},
    "ApiKeyList": {"keys": "live keys, oldest first"},
    "ApiKeyPublic": {"id": "the key's id", "name": "what the key is for"},
    "Attempt": {
        "worker": "the worker process that made the attempt",
        "startedAt": _TIME,
        "finishedAt": _TIME,
        "outcome": "the state it left the message in: delivered, retrying, held or parked",
        "error": "what S3 answered, when the attempt failed",
    },
    "AuditEntry": {"id": "the entry's id"},
    "AuditList": {"entries": "newest first"},
    "DeliveryList": {"deliveries": "newest first"},
    "DestinationList": {"destinations": "oldest first"},
    "Error": {"error": "what went wrong"},
    "HTTPValidationError": {"detail": "not sent by s3dest"},
    "ValidationError": {
        "loc": "not sent by s3dest",
        "msg": "not sent by s3dest",
        "type": "not sent by s3dest",
        "input": "not sent by s3dest",
        "ctx": "not sent by s3dest",
    },
    "ManifestApplied": {"manifest": "the document as JSON"},
    "ManifestView": {"manifest": "the document as JSON", "source": "the YAML as uploaded"},
    "MessageRecord": {
        "installationId": "the message's installationId (null on records stored before "
        "s3dest kept it)",
        "eventId": "the message's event id (x-amz-meta-event-id)",
        "destinationId": "the destination it is delivered to",
        "state": "batching (waiting for its batch to fill), batched (in a sealed batch, "
        "waiting for its object to be written), queued, delivering, retrying, held (its "
        "destination is failing), parked (needs a fix, then a replay) or delivered",
        "eventTime": "the message's event time, RFC 3339 with nanoseconds: when s3dest "
        "accepted it (the key template's time namespace and the object's timestamp)",
        "acceptedAt": f"{_TIME}: when the 202 was sent",
        "objectName": "the message's objectName, e.g. contacts",
        "size": "the object's size in bytes",
        "attempts": "delivery attempts so far",
        "nextAttemptAt": f"{_TIME}: the next attempt, while it is waiting",
        "bucket": "the bucket written, once delivered",
        "key": "the object key, once rendered",
        "etag": "the object's ETag, once delivered",
        "versionId": "the object's version id, on a versioned bucket",
        "lastError": "the last failure, in plain language",
        "lastErrorKind": "how s3dest classified it: transient, destination or message",
        "deliveredAt": f"{_TIME}: when S3 stored the object",
        "updatedAt": _TIME,
        "history": "every attempt (on GET /v1/messages/{eventId} only)",
        "batch": "the batch it is written in, on a destination with batch (key is then "
        "the batch's object once written); null for a message written as an object of its "
        "own",
    },
    "BatchRef": {
        "id": "the batch's id: the event id of its first message, whose record is the batch's own",
        "line": "the message's line in the object, from 0",
    },
    "OrphanedUpload": {
        "bucket": "the bucket",
        "key": "the object key of the upload",
        "uploadId": "S3's upload id",
        "eventId": "the message it was for",
        "recordedAt": _TIME,
    },
    "OrphanedUploads": {
        "orphanedUploads": "newest first",
        "advice": "what to do about them",
    },
    "PreviewRequest": {
        "keyTemplate": "a JMESPath template over metadata, time and data; null or absent: "
        "the default key (timestamp_event-id.json)",
        "message": "a message to render the key for, as sent to POST /v1/messages or as the "
        'page shows it ({"data": {...}}); absent: the product page\'s sample read and '
        "subscribe messages, and the latest real messages",
    },
    "RecentKey": {"eventId": "the message's event-id"},
    "PreviewResponse": {
        "key": "the key for the message given, or for the sample read message",
        "warnings": "advice, e.g. a key that is not unique per message",
        "sampleKeys": "the key for each sample message (read, subscribe)",
    },
    "ReplayResult": {"replayed": "how many messages were queued again"},
    "TestResult": {"etag": "the test object's ETag, when S3 accepted it"},
    "ResultItem": {
        "fields": "the fields read, by name (built from raw when absent)",
        "subscribeEventType": "subscribe messages: create, update, delete or associationUpdate",
        "providerEventType": "subscribe messages: the provider's own event type",
        "raw": "the record as the provider's API returned it",
        "rawEvent": "subscribe messages: the provider's original webhook event",
    },
    "IncomingMessage": {
        "action": "read or subscribe",
        "projectId": "the Ampersand project (x-amz-meta-projectid)",
        "provider": "the SaaS provider, e.g. salesforce or hubspot",
        "groupRef": "the customer's group id",
        "groupName": "the customer's group name",
        "consumerRef": "the customer's user id",
        "consumerName": "the customer's user name",
        "installationId": "the installation (x-amz-meta-installationid)",
        "installationUpdateTime": "when the installation last changed, RFC 3339",
        "objectName": "the object synced, e.g. contacts or account (x-amz-meta-objectname)",
        "operationId": "the read operation (x-amz-meta-operationid)",
        "operationTime": "when the data was read or the event happened, RFC 3339: the "
        "message's event time",
        "result": "the records, one per item",
        "integration": "the amp.yaml integration that routes it (with objectName and action)",
        "destination": "a destination's name or id, instead of routing by amp.yaml",
        "connectionId": "the connection (x-amz-meta-connectionid)",
        "topic": "the topic (x-amz-meta-topic)",
    },
    "DestinationCreate": {
        "name": "alias to reference in your amp.yaml file, e.g. ampersandS3Bucket",
        "bucket": "name of your S3 bucket",
        "region": "AWS region where your bucket is located, e.g. us-west-2",
        "accessKeyId": "AWS access key with s3:PutObject on the bucket",
        "secretAccessKey": "AWS secret access key (stored encrypted, never returned)",
        "sessionToken": "session token for temporary credentials",
        "keyTemplate": "JMESPath template for object key naming; absent: timestamp_event-id.json",
        "storageClass": "S3 storage class for written objects (defaults to STANDARD)",
        "endpointUrl": "an S3-compatible endpoint instead of AWS (operator-allowed hosts)",
        "writeMode": "overwrite (default) or create-only (never replace an object)",
        "enabled": "false keeps messages queued without delivering them",
        "roleArn": "an IAM role s3dest assumes instead of keys (with its externalId)",
        "serverSideEncryption": "AES256 or aws:kms, sent with every object",
        "kmsKeyId": "the KMS key for aws:kms",
        "bucketKeyEnabled": "use an S3 Bucket Key for aws:kms",
        "acl": "a canned ACL sent with every object, e.g. bucket-owner-full-control",
        "tags": "object tags sent with every object",
    },
    "DestinationPublic": {
        "id": "the destination's id",
        "name": "its name, as amp.yaml references it",
        "bucket": "the bucket",
        "region": "the bucket's region",
        "hasSessionToken": "whether a session token is stored (it is never returned)",
        "storageClass": "the storage class of written objects",
        "endpointUrl": "an S3-compatible endpoint, or null for AWS",
        "writeMode": "overwrite or create-only",
        "enabled": "false: messages wait without being delivered",
        "status": "untested (no connection test has passed and nothing was delivered "
        "with the current write settings yet: run Test connection), healthy (a write "
        "succeeded), failing (see diagnosis) or disabled",
        "kmsKeyId": "the KMS key for aws:kms",
        "bucketKeyEnabled": "whether an S3 Bucket Key is used",
    },
}
_WEBHOOK = {
    "id": "the endpoint's id",
    "url": "where events are POSTed",
    "events": "the event types it receives",
    "description": "what the endpoint is for",
}
FIELDS.update(
    WebhookPublic=_WEBHOOK,
    WebhookCreated=_WEBHOOK,
    WebhookList={"webhooks": "oldest first"},
    WebhookDeliveries={"deliveries": "newest first"},
    WebhookDelivery={
        "type": "the event type, e.g. destination.failing",
        "state": "pending, delivered or failed (given up)",
        "attempts": "attempts so far",
        "lastError": "why the last attempt failed",
        "createdAt": _TIME,
        "nextAttemptAt": f"{_TIME}: the next attempt, while pending",
        "finishedAt": f"{_TIME}: when it was delivered or given up",
    },
    WebhookTest={"error": "why the endpoint did not answer 2xx"},
)
FIELDS["DestinationUpdate"] = {
    **FIELDS["DestinationCreate"],
    "sessionToken": "session token for temporary credentials; null clears it",
    "keyTemplate": "JMESPath template for object key naming; null: the default key",
    "endpointUrl": "an S3-compatible endpoint; null: AWS",
}
#: properties of the Error schema's inline `error` object
ERROR_FIELDS = {
    "code": "a stable code, e.g. invalid_input, not_found, conflict",
    "message": "what went wrong and what to do, in plain language",
    "fields": "each wrong field (e.g. bucket, result[0].raw) with how to fix it",
}


def describe(document: dict[str, Any]) -> dict[str, Any]:
    """Put the descriptions and examples above into a generated OpenAPI document."""
    examples, answers = request_examples(), response_examples()
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if (method, path) in OPERATIONS:
                operation["summary"], operation["description"] = OPERATIONS[(method, path)]
            for parameter in operation.get("parameters", []):
                if not parameter.get("description") and parameter["name"] in PARAMETERS:
                    parameter["description"] = PARAMETERS[parameter["name"]]
            content = operation.get("requestBody", {}).get("content", {})
            for media, found in examples.get((method, path), {}).items():
                content.setdefault(media, {})["examples"] = found
            for status, response in operation.get("responses", {}).items():
                for media, found in answers.get((method, path, status), {}).items():
                    response.setdefault("content", {}).setdefault(media, {})["examples"] = found
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        if name in SCHEMAS:
            schema["description"] = SCHEMAS[name]
        for field, prop in schema.get("properties", {}).items():
            text = FIELDS.get(name, {}).get(field)
            if text and not prop.get("description"):
                prop["description"] = text
        if name == "Error":
            for field, prop in schema["properties"]["error"]["properties"].items():
                if field in ERROR_FIELDS:
                    prop.setdefault("description", ERROR_FIELDS[field])
    return document
