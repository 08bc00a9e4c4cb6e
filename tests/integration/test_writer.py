"""The S3 writer against a real S3 server (moto, IAM enforced) and AWS's own error responses.

Every write uses the PutObject-only IAM user: passing at all proves s3dest needs nothing else
(no GetObject, HeadBucket, ListBucket or GetBucketLocation); reads are done with the admin key.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import hashlib
import json
import socket
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.support.aws_errors_server import AwsErrorsServer
from tests.support.moto_server import Credentials, S3Server, putonly_policy

from s3dest.errors import (
    DeliveryError,
    DestinationError,
    MessageDeliveryError,
    TransientDeliveryError,
)
from s3dest.keys import KeyTemplate
from s3dest.keys.samples import READ_EXAMPLE, SUBSCRIBE_EXAMPLE, sample_read, sample_subscribe
from s3dest.messages import EventMetadata, data_dict, encode_body, new_stamp, parse_data
from s3dest.s3 import multipart, writer
from s3dest.s3.metadata import object_metadata, object_metadata_unchecked
from s3dest.s3.storage_classes import STORAGE_CLASSES, canonical_storage_class
from s3dest.s3.writer import ObjectRequest, PutOutcome, S3Destination, put_object

META_KEYS = {
    "projectid",
    "installationid",
    "connectionid",
    "destinationid",
    "operationid",
    "objectname",
    "event-id",
    "timestamp",
    "topic",
}
PAGE_STORAGE_CLASSES = [
    "STANDARD",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "GLACIER_IR",
    "DEEP_ARCHIVE",
]
FAKE_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
FAKE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


# -- helpers ---------------------------------------------------------------------------------------


@pytest.fixture
def putonly(s3_server: S3Server, bucket: str) -> Credentials:
    return s3_server.putonly_user(bucket)


def destination(
    s3_server: S3Server, bucket: str, creds: Credentials, **changes: Any
) -> S3Destination:
    dest = S3Destination(
        bucket=bucket,
        region=s3_server.region,
        access_key_id=creds.access_key_id,
        secret_access_key=creds.secret_access_key,
        session_token=creds.session_token,
        endpoint_url=s3_server.endpoint,
    )
    return dataclasses.replace(dest, **changes)


def errors_destination(server: AwsErrorsServer, **changes: Any) -> S3Destination:
    dest = S3Destination(
        bucket="customer-bucket",
        region="us-east-1",
        access_key_id=FAKE_KEY_ID,
        secret_access_key=FAKE_SECRET,
        endpoint_url=server.endpoint,
    )
    return dataclasses.replace(dest, **changes)


def example_request(
    example: dict[str, Any], template: str | None = None
) -> tuple[ObjectRequest, bytes]:
    """What the delivery path builds for one of the page's examples."""
    sample = sample_read() if example is READ_EXAMPLE else sample_subscribe()
    data = data_dict(parse_data(copy.deepcopy(example)))
    body = encode_body(data)
    key = KeyTemplate(template).render_message(sample.metadata, sample.event_time_ns, data)
    request = ObjectRequest(
        key=key,
        body=body,
        metadata=object_metadata(sample.metadata),
        event_id=sample.metadata.event_id,
    )
    return request, body


def small_request(key: str | None = None, **meta: str) -> ObjectRequest:
    event_id = str(uuid.uuid4())
    metadata = {"event-id": event_id, "objectname": "contacts", **meta}
    return ObjectRequest(
        key=key or f"test/{event_id}.json",
        body=b'{"data":{}}',
        metadata=metadata,
        event_id=event_id,
    )


def raised(dest: S3Destination, request: ObjectRequest) -> DeliveryError:
    with pytest.raises(DeliveryError) as info:
        put_object(dest, request)
    return info.value


def assert_no_secret(exc: BaseException, *secrets: str) -> None:
    texts = [str(exc), repr(exc)]
    if isinstance(exc, DeliveryError):
        texts.append(exc.diagnosis)
    for secret in secrets:
        for text in texts:
            assert secret not in text


# -- the page's two examples, byte for byte --------------------------------------------------------


@pytest.mark.parametrize("example", [READ_EXAMPLE, SUBSCRIBE_EXAMPLE], ids=["read", "subscribe"])
def test_page_examples_land_byte_for_byte_with_metadata(
    s3_server: S3Server, bucket: str, putonly: Credentials, example: dict[str, Any]
) -> None:
    request, body = example_request(example)
    outcome = put_object(destination(s3_server, bucket, putonly), request)
    assert outcome.etag == f'"{hashlib.md5(body).hexdigest()}"'
    assert not outcome.already_present

    admin = s3_server.client()
    stored = admin.get_object(Bucket=bucket, Key=request.key)
    assert stored["Body"].read() == orjson.dumps(example)  # compact JSON, page key order
    head = admin.head_object(Bucket=bucket, Key=request.key)
    assert head["ContentType"] == "application/json"
    assert head["ContentLength"] == len(body)
    # all nine, lower-case; moto (like S3) keeps the empty ones (connectionid, topic) as ""
    assert set(head["Metadata"]) == META_KEYS
    assert head["Metadata"] == request.metadata
    headers = head["ResponseMetadata"]["HTTPHeaders"]
    assert {h for h in headers if h.startswith("x-amz-meta-")} == {
        f"x-amz-meta-{k}" for k in META_KEYS
    }
    assert head.get("StorageClass", "STANDARD") == "STANDARD"  # S3 omits it for STANDARD


def test_read_example_lands_at_the_page_default_key(
    s3_server: S3Server, bucket: str, putonly: Credentials
) -> None:
    request, _ = example_request(READ_EXAMPLE)
    assert request.key == "2025-10-14T02:58:59.323405308Z_0199e0a8-149d-7ee9-9f50-0514403517f9.json"
    put_object(destination(s3_server, bucket, putonly), request)
    meta = s3_server.client().head_object(Bucket=bucket, Key=request.key)["Metadata"]
    assert meta["event-id"] == "0199e0a8-149d-7ee9-9f50-0514403517f9"
    assert meta["timestamp"] == "1760410739"  # Unix seconds of the event time
    assert meta["objectname"] == "contacts"
    assert meta["installationid"] == "085353b1-07f1-4209-b471-7e028c0a68c8"
    assert meta["projectid"] == "9482e676-4874-43a4-beea-fa8081d13a07"
    assert meta["connectionid"] == "" and meta["topic"] == ""


def test_page_custom_key_example_lands_under_its_prefix(
    s3_server: S3Server, bucket: str, putonly: Credentials
) -> None:
    template = "join('/', [metadata.objectName, time.date, metadata.\"event-id\"])"
    request, _ = example_request(READ_EXAMPLE, template)
    put_object(destination(s3_server, bucket, putonly), request)
    listed = s3_server.client().list_objects_v2(Bucket=bucket, Prefix="contacts/2025-10-14/")
    assert [o["Key"] for o in listed["Contents"]] == [
        "contacts/2025-10-14/0199e0a8-149d-7ee9-9f50-0514403517f9"
    ]


# -- storage classes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given",
    [c.lower() for c in PAGE_STORAGE_CLASSES] + ["Reduced_Redundancy", "express-onezone"],
)
def test_storage_class_is_set_case_insensitively(
    s3_server: S3Server, bucket: str, putonly: Credentials, given: str
) -> None:
    storage_class = canonical_storage_class(given)
    assert storage_class in STORAGE_CLASSES
    dest = destination(s3_server, bucket, putonly, storage_class=storage_class)
    request = small_request()
    put_object(dest, request)
    head = s3_server.client().head_object(Bucket=bucket, Key=request.key)
    # moto accepts EXPRESS_ONEZONE on a general-purpose bucket; real S3 needs a directory bucket
    assert head.get("StorageClass", "STANDARD") == storage_class


def test_storage_class_defaults_to_standard() -> None:
    assert canonical_storage_class(None) == "STANDARD"
    assert canonical_storage_class("") == "STANDARD"
    assert S3Destination("b", "r", "k", "s").storage_class == "STANDARD"


def test_storage_class_header_is_sent(aws_errors_server: AwsErrorsServer) -> None:
    aws_errors_server.respond_with("OK")
    put_object(errors_destination(aws_errors_server, storage_class="GLACIER_IR"), small_request())
    assert aws_errors_server.requests[-1].headers["x-amz-storage-class"] == "GLACIER_IR"


# -- integrity checksum ----------------------------------------------------------------------------


def test_put_sends_a_signed_sha256_checksum_of_the_body(
    aws_errors_server: AwsErrorsServer,
) -> None:
    aws_errors_server.respond_with("OK")
    request, body = example_request(READ_EXAMPLE)
    put_object(errors_destination(aws_errors_server), request)
    (sent,) = aws_errors_server.requests
    assert sent.method == "PUT"
    assert sent.body == body
    assert (
        sent.headers["x-amz-checksum-sha256"]
        == base64.b64encode(hashlib.sha256(body).digest()).decode()
    )
    assert "x-amz-checksum-sha256" in sent.headers["authorization"]  # part of the signature
    assert sent.headers["content-type"] == "application/json"
    assert {h for h in sent.headers if h.startswith("x-amz-meta-")} == {
        f"x-amz-meta-{k}" for k in META_KEYS
    }


def test_moto_accepts_the_checksum(s3_server: S3Server, bucket: str, putonly: Credentials) -> None:
    # moto does not verify x-amz-checksum-sha256 (it accepts a wrong one too); the header's
    # value is checked against the canned server above. Here: S3 takes it without complaint.
    request, body = example_request(SUBSCRIBE_EXAMPLE)
    put_object(destination(s3_server, bucket, putonly), request)
    stored = s3_server.client().get_object(Bucket=bucket, Key=request.key)["Body"].read()
    assert stored == body


# -- multipart, PutObject-only ---------------------------------------------------------------------


@pytest.mark.parametrize("as_file", [False, True], ids=["bytes", "file"])
def test_multipart_upload_with_the_putonly_user(
    s3_server: S3Server,
    bucket: str,
    putonly: Credentials,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    as_file: bool,
) -> None:
    monkeypatch.setattr(writer, "MULTIPART_THRESHOLD", 1024 * 1024)
    record = {"fields": {"id": "1", "note": "x" * 1000}, "raw": {"id": "1"}}
    message = copy.deepcopy(READ_EXAMPLE)
    message["data"]["result"] = [record] * 18_000  # ≈ 18 MiB: at least three parts
    body = orjson.dumps(message)
    assert len(body) > 2 * multipart.PART_SIZE
    payload: bytes | Path = body
    if as_file:
        payload = tmp_path / "body.json"
        payload.write_bytes(body)
    meta = object_metadata(sample_read().metadata)
    dest = destination(s3_server, bucket, putonly, storage_class="STANDARD_IA")
    request = ObjectRequest(key="big/one.json", body=payload, metadata=meta, event_id="e")
    outcome = put_object(dest, request)
    parts = -(-len(body) // multipart.PART_SIZE)  # S3's multipart ETag ends in the count
    assert parts >= 3
    assert outcome.etag is not None and outcome.etag.strip('"').endswith(f"-{parts}")

    admin = s3_server.client()
    head = admin.head_object(Bucket=bucket, Key="big/one.json")
    assert head["ContentLength"] == len(body)
    assert head["ContentType"] == "application/json"
    assert head["Metadata"] == meta
    assert head["StorageClass"] == "STANDARD_IA"
    got = admin.get_object(Bucket=bucket, Key="big/one.json")["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(body).digest()


def test_small_bodies_go_up_in_one_put(aws_errors_server: AwsErrorsServer) -> None:
    aws_errors_server.respond_with("OK")
    put_object(errors_destination(aws_errors_server), small_request())
    assert [(r.method, "uploads" in r.path) for r in aws_errors_server.requests] == [("PUT", False)]


# -- create-only -----------------------------------------------------------------------------------


def test_create_only_second_attempt_of_the_same_message_is_already_present(
    s3_server: S3Server, bucket: str, putonly: Credentials
) -> None:
    dest = destination(s3_server, bucket, putonly, create_only=True)
    request, body = example_request(READ_EXAMPLE)  # the default key carries the event-id
    first = put_object(dest, request)
    assert first == PutOutcome(etag=f'"{hashlib.md5(body).hexdigest()}"', version=None)
    retry = put_object(dest, request)
    assert retry.already_present is True


def test_create_only_collision_without_event_id_is_a_message_error(
    s3_server: S3Server, bucket: str, putonly: Credentials
) -> None:
    dest = destination(s3_server, bucket, putonly, create_only=True)
    put_object(dest, small_request(key="contacts/same-operation"))
    err = raised(dest, small_request(key="contacts/same-operation"))
    assert isinstance(err, MessageDeliveryError)
    assert err.kind == "message"
    assert "collision" in err.message
    assert "contacts/same-operation" in err.message
    assert 'metadata."event-id"' in err.message
    # the first object was not overwritten
    got = s3_server.client().get_object(Bucket=bucket, Key="contacts/same-operation")
    assert got["Body"].read() == b'{"data":{}}'


def test_create_only_sends_if_none_match(aws_errors_server: AwsErrorsServer) -> None:
    aws_errors_server.respond_with("OK")
    put_object(errors_destination(aws_errors_server, create_only=True), small_request())
    put_object(errors_destination(aws_errors_server), small_request())
    first, second = aws_errors_server.requests
    assert first.headers.get("if-none-match") == "*"
    assert "if-none-match" not in second.headers


def test_conditional_request_conflict_is_retried_not_taken_as_delivered(
    aws_errors_server: AwsErrorsServer,
) -> None:
    # S3's 409 ConditionalRequestConflict (a concurrent conditional write) means "retry";
    # object_store reports it as AlreadyExists, which must not become already_present.
    aws_errors_server.respond_with("ConditionalRequestConflict")
    request = small_request()
    assert request.event_id in request.key
    err = raised(errors_destination(aws_errors_server, create_only=True), request)
    assert isinstance(err, TransientDeliveryError)
    assert err.s3_code == "ConditionalRequestConflict"


# -- metadata rules --------------------------------------------------------------------------------


def _meta(**changes: str) -> dict[str, str]:
    sample = sample_read()
    return object_metadata_unchecked(dataclasses.replace(sample.metadata, **changes))


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"objectName": "Kontakte-Übersicht"}, "US-ASCII"),
        ({"topic": "line\nbreak"}, "control characters"),
        ({"topic": "t" * 2100}, "2048 bytes"),
    ],
    ids=["non-ascii", "control-char", "over-2kb"],
)
def test_bad_metadata_is_a_clear_message_error(
    s3_server: S3Server,
    bucket: str,
    putonly: Credentials,
    changes: dict[str, str],
    words: str,
) -> None:
    meta = _meta(**changes)
    request = ObjectRequest(key="m.json", body=b"{}", metadata=meta, event_id="e")
    err = raised(destination(s3_server, bucket, putonly), request)
    assert isinstance(err, MessageDeliveryError)  # parks the message, not the destination
    assert words in err.message
    field = next(iter(changes)).lower()
    if words != "2048 bytes":
        assert f"x-amz-meta-{field}" in err.message
    # and the checked builder refuses it before any request is made
    with pytest.raises(MessageDeliveryError, match=words):
        object_metadata(dataclasses.replace(sample_read().metadata, **changes))


def test_metadata_at_the_budget_is_accepted(
    s3_server: S3Server, bucket: str, putonly: Credentials
) -> None:
    meta = _meta(topic="")
    used = sum(len(k) + len(v) for k, v in meta.items())
    meta["topic"] = "t" * (2048 - used)
    request = ObjectRequest(key="budget.json", body=b"{}", metadata=meta, event_id="e")
    put_object(destination(s3_server, bucket, putonly), request)
    head = s3_server.client().head_object(Bucket=bucket, Key="budget.json")
    assert len(head["Metadata"]["topic"]) == 2048 - used


# -- session tokens --------------------------------------------------------------------------------


def _role_credentials(s3_server: S3Server, bucket: str) -> Credentials:
    """Temporary credentials (ASIA… + session token) of a role allowed PutObject only."""
    iam = s3_server.client("iam")
    name = f"s3dest-writer-{uuid.uuid4().hex[:8]}"
    admin_arn = iam.get_user()["User"]["Arn"]
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": admin_arn}, "Action": "sts:AssumeRole"}
        ],
    }
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    iam.put_role_policy(
        RoleName=name, PolicyName="put", PolicyDocument=json.dumps(putonly_policy(bucket))
    )
    sts = s3_server.client("sts")
    creds = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="s3dest")["Credentials"]
    return Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])


def test_temporary_credentials_with_a_session_token_write(s3_server: S3Server, bucket: str) -> None:
    creds = _role_credentials(s3_server, bucket)
    assert creds.access_key_id.startswith("ASIA") and creds.session_token
    dest = destination(s3_server, bucket, creds)
    request, body = example_request(READ_EXAMPLE)
    put_object(dest, request)
    assert s3_server.client().get_object(Bucket=bucket, Key=request.key)["Body"].read() == body
    # without the token the same key id is unknown: the token really was sent and checked
    err = raised(dataclasses.replace(dest, session_token=None), small_request())
    assert err.s3_code == "InvalidAccessKeyId"


def test_wrong_session_token_gets_the_token_diagnosis(s3_server: S3Server, bucket: str) -> None:
    creds = _role_credentials(s3_server, bucket)
    assert creds.session_token is not None
    dest = destination(s3_server, bucket, creds, session_token="not-the-token")
    err = raised(dest, small_request())
    assert isinstance(err, DestinationError)
    assert err.s3_code == "InvalidToken"  # moto's code; AWS says ExpiredToken/InvalidToken
    assert "session token" in err.diagnosis
    assert_no_secret(err, creds.secret_access_key, creds.session_token, "not-the-token")


# -- diagnoses, one per case (moto) ----------------------------------------------------------------


def test_wrong_secret_diagnosis(s3_server: S3Server, bucket: str, putonly: Credentials) -> None:
    wrong = Credentials(putonly.access_key_id, putonly.secret_access_key[::-1])
    err = raised(destination(s3_server, bucket, wrong), small_request())
    assert isinstance(err, DestinationError) and err.kind == "destination"
    assert err.s3_code == "SignatureDoesNotMatch"
    assert "secret access key does not belong to access key id" in err.diagnosis
    assert f"{putonly.access_key_id[:4]}…{putonly.access_key_id[-4:]}" in err.diagnosis
    assert putonly.access_key_id not in err.diagnosis  # masked
    assert_no_secret(err, wrong.secret_access_key, putonly.secret_access_key)


def test_unknown_key_id_diagnosis(s3_server: S3Server, bucket: str) -> None:
    creds = Credentials("AKIAS3DESTUNKNOWN000", FAKE_SECRET)
    err = raised(destination(s3_server, bucket, creds), small_request())
    assert isinstance(err, DestinationError)
    assert err.s3_code == "InvalidAccessKeyId"
    assert "does not recognise the access key id AKIA…N000" in err.diagnosis
    assert "Create a new access key" in err.diagnosis
    assert_no_secret(err, FAKE_SECRET)


def test_missing_bucket_diagnosis(s3_server: S3Server) -> None:
    # an admin key (allowed everything), so the only problem is the bucket itself
    missing = f"s3dest-missing-{uuid.uuid4().hex[:8]}"
    err = raised(destination(s3_server, missing, s3_server.admin_credentials), small_request())
    assert isinstance(err, DestinationError)
    assert err.s3_code == "NoSuchBucket"
    assert f"The bucket '{missing}' does not exist" in err.diagnosis
    assert f"aws s3api create-bucket --bucket {missing}" in err.diagnosis
    assert_no_secret(err, s3_server.admin_secret_access_key)


def test_denied_permission_diagnosis_names_putobject_and_the_policy(
    s3_server: S3Server, bucket: str
) -> None:
    # allowed to read the bucket, not to write it
    read_only = s3_server.user_with_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{bucket}/*",
                }
            ],
        }
    )
    err = raised(destination(s3_server, bucket, read_only), small_request())
    assert isinstance(err, DestinationError)
    assert err.s3_code == "AccessDenied" and err.status == 403
    assert "s3:PutObject" in err.diagnosis
    assert f"arn:aws:s3:::{bucket}/*" in err.diagnosis
    policy = json.loads(err.diagnosis[err.diagnosis.index("{") : err.diagnosis.rindex("}") + 1])
    assert policy == putonly_policy(bucket)
    assert_no_secret(err, read_only.secret_access_key)


def test_putonly_user_of_another_bucket_is_denied(s3_server: S3Server, bucket: str) -> None:
    other = s3_server.create_bucket()
    creds = s3_server.putonly_user(other)
    err = raised(destination(s3_server, bucket, creds), small_request())
    assert isinstance(err, DestinationError) and err.s3_code == "AccessDenied"
    assert f"arn:aws:s3:::{bucket}/*" in err.diagnosis


# -- diagnoses against AWS's documented error responses --------------------------------------------


def test_permanent_redirect_names_the_real_region(aws_errors_server: AwsErrorsServer) -> None:
    # S3's 301 has no Location; obstore reports only "redirect without LOCATION" (no status,
    # no body), so s3dest asks for the region with an anonymous HEAD of the bucket.
    aws_errors_server.respond_with("PermanentRedirect", region="eu-west-1")
    err = raised(errors_destination(aws_errors_server), small_request())
    assert isinstance(err, DestinationError) and err.kind == "destination"
    assert err.s3_code == "PermanentRedirect" and err.status == 301
    assert "is in region 'eu-west-1', not 'us-east-1'" in err.diagnosis
    assert "Change the destination's region to 'eu-west-1'" in err.diagnosis
    put, probe = aws_errors_server.requests
    assert put.method == "PUT"
    assert (probe.method, probe.path) == ("HEAD", "/customer-bucket")
    assert "authorization" not in probe.headers  # unsigned: needs no permission, sends no key
    assert FAKE_KEY_ID not in json.dumps(probe.headers)


def test_permanent_redirect_of_a_prepared_put_names_the_real_region(
    aws_errors_server: AwsErrorsServer,
) -> None:
    aws_errors_server.respond_with("PermanentRedirect", region="ap-southeast-2")
    dest = errors_destination(aws_errors_server)
    with pytest.raises(DestinationError) as info:
        writer.send_put(writer.prepare_put(dest, small_request()))
    assert "is in region 'ap-southeast-2'" in info.value.diagnosis


def test_permanent_redirect_without_a_region_still_says_wrong_region(
    aws_errors_server: AwsErrorsServer,
) -> None:
    aws_errors_server.respond_with("PermanentRedirect", times=1)
    aws_errors_server.respond_with("AccessDenied")  # the probe learns nothing
    err = raised(errors_destination(aws_errors_server), small_request())
    assert isinstance(err, DestinationError)
    assert "wrong region ('us-east-1')" in err.diagnosis
    assert "Check the bucket's region" in err.diagnosis


def test_authorization_header_malformed_names_the_real_region(
    aws_errors_server: AwsErrorsServer,
) -> None:
    aws_errors_server.respond_with("AuthorizationHeaderMalformed", region="eu-west-1")
    err = raised(errors_destination(aws_errors_server), small_request())
    assert isinstance(err, DestinationError)
    assert err.s3_code == "AuthorizationHeaderMalformed" and err.status == 400
    assert "is in region 'eu-west-1', not 'us-east-1'" in err.diagnosis
    assert "expecting 'eu-west-1'" in err.message  # S3's own words are kept
    assert len(aws_errors_server.requests) == 1  # region is in the answer: no probe


def test_expired_token_diagnosis(aws_errors_server: AwsErrorsServer) -> None:
    token = "FwoGZXIvYXdzEXAMPLE-session-token-" + "t" * 40
    aws_errors_server.respond_with("ExpiredToken")  # its XML echoes the token back
    dest = errors_destination(aws_errors_server, session_token=token)
    err = raised(dest, small_request())
    assert aws_errors_server.requests[0].headers["x-amz-security-token"] == token
    assert isinstance(err, DestinationError)
    assert err.s3_code == "ExpiredToken"
    assert "session token has expired" in err.diagnosis
    assert "fresh temporary credentials" in err.diagnosis
    assert_no_secret(err, token, FAKE_SECRET)


@pytest.mark.parametrize("code", ["SlowDown", "InternalError", "ServiceUnavailable"])
def test_server_side_errors_are_transient(aws_errors_server: AwsErrorsServer, code: str) -> None:
    aws_errors_server.respond_with(code)
    err = raised(errors_destination(aws_errors_server), small_request())
    assert isinstance(err, TransientDeliveryError) and err.kind == "transient"
    assert err.s3_code == code
    assert err.status in (500, 503)
    assert code in err.message and "retrying" in err.message
    assert len(aws_errors_server.requests) == 1  # one attempt: the delivery loop retries


def test_refused_connection_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dest = S3Destination(
        "b", "us-east-1", FAKE_KEY_ID, FAKE_SECRET, endpoint_url=f"http://127.0.0.1:{port}"
    )
    err = raised(dest, small_request())
    assert isinstance(err, TransientDeliveryError)
    assert "could not reach S3" in err.message
    assert f"127.0.0.1:{port}" in err.message
    assert_no_secret(err, FAKE_SECRET)


# -- secrets never show ----------------------------------------------------------------------------


def test_repr_of_a_destination_hides_the_secret_and_token() -> None:
    dest = S3Destination(
        "b", "us-east-1", FAKE_KEY_ID, FAKE_SECRET, session_token="SESSION-TOKEN-VALUE"
    )
    for text in (repr(dest), str(dest), repr(dest.target)):
        assert FAKE_SECRET not in text
        assert "SESSION-TOKEN-VALUE" not in text


@pytest.mark.parametrize(
    "code",
    [
        "PermanentRedirect",
        "AuthorizationHeaderMalformed",
        "ExpiredToken",
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "NoSuchBucket",
        "SlowDown",
        "InternalError",
        "PreconditionFailed",
    ],
)
def test_no_error_message_carries_the_secret(aws_errors_server: AwsErrorsServer, code: str) -> None:
    aws_errors_server.respond_with(code)
    dest = errors_destination(
        aws_errors_server, session_token="TOKEN-" + "z" * 30, create_only=True
    )
    err = raised(dest, small_request(key="no-event-id.json"))
    assert_no_secret(err, FAKE_SECRET, "TOKEN-" + "z" * 30)
    assert FAKE_KEY_ID not in str(err) + err.diagnosis  # only the masked id


# -- same stamp, same object -----------------------------------------------------------------------


def test_a_retried_message_writes_the_same_key_body_and_metadata(
    s3_server: S3Server, bucket: str, putonly: Credentials
) -> None:
    stamp = new_stamp()
    data = data_dict(parse_data(copy.deepcopy(READ_EXAMPLE)))
    meta = EventMetadata(
        projectId="p",
        installationId=data["installationId"],
        connectionId="c",
        destinationId="d",
        operationId=data["operationId"],
        objectName=data["objectName"],
        event_id=stamp.event_id,
        timestamp=str(stamp.event_time_ns // 10**9),
        topic="",
    )
    template = KeyTemplate(None)
    requests = [
        ObjectRequest(
            key=template.render_message(meta, stamp.event_time_ns, data),
            body=encode_body(data),
            metadata=object_metadata(meta),
            event_id=stamp.event_id,
        )
        for _attempt in range(2)
    ]
    assert requests[0] == requests[1]
    dest = destination(s3_server, bucket, putonly)
    etags = {put_object(dest, r).etag for r in requests}
    assert len(etags) == 1
    listed = s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]
    assert [o["Key"] for o in listed] == [requests[0].key]
