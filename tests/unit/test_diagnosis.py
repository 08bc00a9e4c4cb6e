"""Reading S3 failures as obstore reports them, and the words s3dest puts on each.

The texts below are shaped like obstore 0.12 / object_store 0.14 error strings captured
against the canned AWS error server (tests/support/aws_errors_server.py).
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from s3dest.errors import (
    DeliveryError,
    DestinationError,
    MessageDeliveryError,
    TransientDeliveryError,
)
from s3dest.s3.diagnosis import (
    Target,
    bucket_region,
    diagnose,
    from_client_error,
    is_region_redirect,
    putobject_policy,
)
from s3dest.s3.policy import PolicyInputs, write_policy

TARGET = Target(bucket="acme-data", region="us-east-1", access_key_id_masked="AKIA…MPLE")
URL = "http://127.0.0.1:40000/acme-data/k.json"


def _debug(inner: str) -> str:
    # object_store always appends this, with "retry_timeout" in it
    return (
        '\n\nDebug source:\nGeneric {\n    store: "S3",\n    source: RetryError(\n'
        "        RetryErrorImpl {\n            method: PUT,\n            retries: 0,\n"
        "            max_retries: 0,\n            retry_timeout: 30s,\n"
        f"            inner: {inner},\n        }},\n    ),\n}}"
    )


def s3_error(status: str, code: str, message: str, extra: str = "") -> str:
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>{extra}"
        "<RequestId>ABC</RequestId><HostId>xyz</HostId></Error>"
    )
    return (
        f"Generic S3 error: Error performing PUT {URL} in 1.2ms - Server returned non-2xx "
        f"status code: {status}: {xml}" + _debug("Status { ... }")
    )


BARE_REDIRECT = (
    f"Generic S3 error: Error performing PUT {URL} in 1.9ms - Received redirect without "
    "LOCATION, this normally indicates an incorrectly configured region" + _debug("BareRedirect")
)
CONNECTION_REFUSED = (
    f"Generic S3 error: Error performing PUT {URL} in 230µs - HTTP error: error sending request"
    + _debug('Http(HttpError { kind: Connect, source: ConnectError("tcp connect error") })')
)
TIMED_OUT = (
    f"Generic S3 error: Error performing PUT {URL} in 1.0s - HTTP error: error sending request"
    + _debug("Http(HttpError { kind: Timeout, source: reqwest::Error { source: TimedOut } })")
)


def translate(text: str, **kwargs: str) -> DeliveryError:
    return from_client_error(Exception(text), TARGET, **kwargs)


# -- the bucket's region ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "region"),
    [
        ("<Region>eu-west-1</Region>", "eu-west-1"),
        ("the region 'us-east-1' is wrong; expecting 'ap-southeast-2'", "ap-southeast-2"),
        ("<Endpoint>acme-data.s3.eu-central-1.amazonaws.com</Endpoint>", "eu-central-1"),
        ("<Endpoint>acme-data.s3-us-west-2.amazonaws.com</Endpoint>", "us-west-2"),
        ("<Endpoint>acme-data.s3.amazonaws.com</Endpoint>", "us-east-1"),
        ("<Endpoint>s3.amazonaws.com</Endpoint>", "us-east-1"),  # path-style, us-east-1
        ("<Endpoint>storage.example.com</Endpoint>", None),  # not S3's: no region from it
        ("<Endpoint>s3.us-gov-west-1.amazonaws.com</Endpoint>", "us-gov-west-1"),
        ("<Message>Access Denied</Message>", None),
    ],
)
def test_bucket_region_is_read_from_aws_error_documents(text: str, region: str | None) -> None:
    assert bucket_region(text) == region


# -- obstore's texts ----------------------------------------------------------------------------


def test_bare_redirect_is_a_wrong_region_not_a_timeout() -> None:
    # Regression: the debug text's "retry_timeout" made this "S3 did not answer in time".
    assert is_region_redirect(BARE_REDIRECT)
    err = translate(BARE_REDIRECT)
    assert isinstance(err, DestinationError) and err.kind == "destination"
    assert (err.s3_code, err.status) == ("PermanentRedirect", 301)
    assert "wrong region ('us-east-1')" in err.diagnosis


def test_bare_redirect_with_the_probed_region_names_it() -> None:
    err = translate(BARE_REDIRECT, region_header="eu-west-1")
    assert err.diagnosis == (
        "The bucket 'acme-data' is in region 'eu-west-1', not 'us-east-1'. "
        "Change the destination's region to 'eu-west-1'."
    )


def test_redirect_with_a_body_names_the_region_from_the_endpoint() -> None:
    text = s3_error(
        "301 Moved Permanently",
        "PermanentRedirect",
        "The bucket you are attempting to access must be addressed using the specified endpoint.",
        "<Endpoint>acme-data.s3.eu-west-1.amazonaws.com</Endpoint><Bucket>acme-data</Bucket>",
    )
    assert is_region_redirect(text)
    assert "is in region 'eu-west-1'" in translate(text).diagnosis


def test_authorization_header_malformed_names_the_region() -> None:
    text = s3_error(
        "400 Bad Request",
        "AuthorizationHeaderMalformed",
        "The authorization header is malformed; the region 'us-east-1' is wrong; "
        "expecting 'eu-west-1'",
        "<Region>eu-west-1</Region>",
    )
    assert not is_region_redirect(text)
    err = translate(text)
    assert isinstance(err, DestinationError)
    assert "is in region 'eu-west-1', not 'us-east-1'" in err.diagnosis


def test_refused_connection_is_transient_and_says_so() -> None:
    # Regression: was "S3 did not answer in time" because of "retry_timeout" in the text.
    err = translate(CONNECTION_REFUSED)
    assert isinstance(err, TransientDeliveryError)
    assert err.message == "could not reach S3 (the AWS endpoint); retrying"


def test_endpoint_is_named_when_unreachable() -> None:
    target = dataclasses.replace(TARGET, endpoint_url="http://minio.internal:9000")
    err = from_client_error(Exception(CONNECTION_REFUSED), target)
    assert "endpoint http://minio.internal:9000" in err.message


def test_timeout_is_transient() -> None:
    err = translate(TIMED_OUT)
    assert isinstance(err, TransientDeliveryError)
    assert err.message == "S3 did not answer in time; retrying"


def test_unrecognised_failure_is_transient_with_its_first_line() -> None:
    err = translate("something odd happened\nmore detail")
    assert isinstance(err, TransientDeliveryError)
    assert err.message == "S3 request failed: something odd happened; retrying"


# -- one classification and one set of words per S3 error ---------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "cls", "words"),
    [
        ("403 Forbidden", "AccessDenied", DestinationError, "need s3:PutObject"),
        ("403 Forbidden", "InvalidAccessKeyId", DestinationError, "does not recognise"),
        ("403 Forbidden", "SignatureDoesNotMatch", DestinationError, "secret access key"),
        ("400 Bad Request", "ExpiredToken", DestinationError, "session token has expired"),
        ("400 Bad Request", "InvalidToken", DestinationError, "session token"),
        ("404 Not Found", "NoSuchBucket", DestinationError, "does not exist"),
        ("400 Bad Request", "InvalidStorageClass", DestinationError, "storage class"),
        ("501 Not Implemented", "NotImplemented", DestinationError, "does not implement"),
        ("400 Bad Request", "MetadataTooLarge", MessageDeliveryError, "MetadataTooLarge"),
        ("400 Bad Request", "KeyTooLongError", MessageDeliveryError, "KeyTooLongError"),
        ("400 Bad Request", "EntityTooLarge", MessageDeliveryError, "EntityTooLarge"),
        ("503 Service Unavailable", "SlowDown", TransientDeliveryError, "SlowDown"),
        ("500 Internal Server Error", "InternalError", TransientDeliveryError, "InternalError"),
        ("400 Bad Request", "RequestTimeout", TransientDeliveryError, "RequestTimeout"),
        ("409 Conflict", "ConditionalRequestConflict", TransientDeliveryError, "Conflict"),
        ("400 Bad Request", "InvalidArgument", DestinationError, "S3 said: InvalidArgument"),
    ],
)
def test_each_s3_error_gets_its_class_and_words(
    status: str, code: str, cls: type[DeliveryError], words: str
) -> None:
    err = translate(s3_error(status, code, f"{code} happened"))
    assert type(err) is cls
    assert err.s3_code == code
    assert err.status == int(status[:3])
    assert words in err.diagnosis


@pytest.mark.parametrize(
    ("status", "cls", "words"),
    [
        (403, DestinationError, "s3:PutObject"),  # HEAD-style answers carry no XML
        (404, DestinationError, "does not exist"),
        (429, TransientDeliveryError, "HTTP 429"),
        (502, TransientDeliveryError, "HTTP 502"),
        (503, TransientDeliveryError, "HTTP 503"),
    ],
)
def test_status_without_a_code(status: int, cls: type[DeliveryError], words: str) -> None:
    err = diagnose(status=status, s3_code=None, text="", target=TARGET)
    assert type(err) is cls
    assert words in err.diagnosis


def test_access_denied_carries_the_page_policy_for_this_bucket() -> None:
    err = translate(s3_error("403 Forbidden", "AccessDenied", "Access Denied"))
    assert "AKIA…MPLE" in err.diagnosis
    start, end = err.diagnosis.index("{"), err.diagnosis.rindex("}") + 1
    assert json.loads(err.diagnosis[start:end]) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": "arn:aws:s3:::acme-data/*",
            }
        ],
    }
    assert json.loads(putobject_policy("acme-data")) == json.loads(err.diagnosis[start:end])


def test_no_such_bucket_suggests_the_create_command_for_the_region() -> None:
    target = dataclasses.replace(TARGET, region="us-west-2")
    err = from_client_error(
        Exception(s3_error("404 Not Found", "NoSuchBucket", "The specified bucket does not exist")),
        target,
    )
    assert (
        "aws s3api create-bucket --bucket acme-data --region us-west-2 "
        "--create-bucket-configuration LocationConstraint=us-west-2" in err.diagnosis
    )


def test_diagnoses_of_different_causes_differ() -> None:
    codes = [
        ("403 Forbidden", "AccessDenied"),
        ("403 Forbidden", "InvalidAccessKeyId"),
        ("403 Forbidden", "SignatureDoesNotMatch"),
        ("400 Bad Request", "ExpiredToken"),
        ("404 Not Found", "NoSuchBucket"),
    ]
    texts = {translate(s3_error(s, c, "x")).diagnosis for s, c in codes}
    texts.add(translate(BARE_REDIRECT, region_header="eu-west-1").diagnosis)
    assert len(texts) == len(codes) + 1


def test_target_has_no_place_for_a_secret() -> None:
    assert {f.name for f in dataclasses.fields(Target)} == {
        "bucket",
        "region",
        "access_key_id_masked",
        "endpoint_url",
        "storage_class",
        "role_arn",  # an ARN, not a credential
        "policy",  # which options the configuration has (PolicyInputs: no credential)
    }


@pytest.mark.parametrize(
    ("region", "partition"),
    [("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov"), ("eu-west-1", "aws")],
)
def test_access_denied_policy_names_the_bucket_regions_partition(
    region: str, partition: str
) -> None:
    """Planted bug (found in review): the policy said arn:aws:s3::: for every region, which
    grants nothing on a China or GovCloud bucket."""
    target = dataclasses.replace(TARGET, region=region)
    err = diagnose(status=403, s3_code="AccessDenied", text="", target=target)
    start, end = err.diagnosis.index("{"), err.diagnosis.rindex("}") + 1
    resource = json.loads(err.diagnosis[start:end])["Statement"][0]["Resource"]
    assert resource == f"arn:{partition}:s3:::acme-data/*"
    assert f"s3:PutObject on arn:{partition}:s3:::acme-data/*" in err.diagnosis
    inputs = PolicyInputs(bucket="acme-data", tags=True, partition=partition)
    assert write_policy(inputs)["Statement"][0]["Resource"] == resource
