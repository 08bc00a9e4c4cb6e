"""Diagnoses of per-attempt integrity errors and of S3-compatible stores (issue 14).

The texts are shaped as obstore reports S3 failures (see test_diagnosis.py's helpers).
"""

from __future__ import annotations

import dataclasses

import pytest
from tests.unit.test_diagnosis import TARGET, URL, _debug, s3_error, translate

from s3dest.errors import DestinationError, TransientDeliveryError
from s3dest.s3.diagnosis import diagnose, from_client_error

RGW = dataclasses.replace(TARGET, endpoint_url="http://127.0.0.1:7480")
# rustls's error when an https:// endpoint's port answers in plain HTTP (captured).
TLS_TO_HTTP = (
    f"Generic S3 error: Error performing PUT {URL} in 1.8ms - HTTP error: error sending request"
    + _debug(
        "Http(HttpError { kind: Connect, source: reqwest::Error { kind: Request, source: "
        "hyper_util::client::legacy::Error(Connect, Custom { kind: Other, error: Custom { "
        "kind: InvalidData, error: InvalidMessage(InvalidContentType) } }) } })"
    )
)


@pytest.mark.parametrize("code", ["XAmzContentSHA256Mismatch", "BadDigest", "InvalidDigest"])
def test_integrity_errors_of_one_attempt_are_transient(code: str) -> None:
    # A body damaged on the way: sending it again works; the destination is not broken.
    err = translate(s3_error("400 Bad Request", code, "The provided digest does not match"))
    assert type(err) is TransientDeliveryError
    assert err.kind == "transient"
    assert code in err.message


def test_invalid_argument_for_a_storage_class_names_storage_class() -> None:
    # RGW's answer to a class its zone placement does not declare.
    target = dataclasses.replace(RGW, storage_class="GLACIER")
    err = from_client_error(Exception(s3_error("400 Bad Request", "InvalidArgument", "")), target)
    assert type(err) is DestinationError
    assert "storageClass GLACIER" in err.diagnosis
    assert "STANDARD" in err.diagnosis
    # With STANDARD, an InvalidArgument is about something else: storageClass is not blamed.
    plain = from_client_error(Exception(s3_error("400 Bad Request", "InvalidArgument", "x")), RGW)
    assert "storageClass" not in plain.diagnosis


@pytest.mark.parametrize("message", ["", "   ", "<b></b>"])
def test_an_empty_message_is_not_printed_as_said(message: str) -> None:
    err = translate(s3_error("400 Bad Request", "InvalidRequest", message))
    assert "S3 said" not in err.diagnosis
    assert err.diagnosis.endswith("InvalidRequest")


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (403, "InvalidAccessKeyId"),
        (403, "SignatureDoesNotMatch"),
        (403, "AccessDenied"),
        (404, "NoSuchBucket"),
        (400, "InvalidStorageClass"),
        (400, "ExpiredToken"),
    ],
)
def test_no_aws_wording_when_the_endpoint_is_not_aws(status: int, code: str) -> None:
    err = diagnose(status=status, s3_code=code, text="<Message>m</Message>", target=RGW)
    assert "AWS" not in err.diagnosis, err.diagnosis
    on_aws = diagnose(status=status, s3_code=code, text="<Message>m</Message>", target=TARGET)
    assert type(on_aws) is type(err)


def test_https_to_a_plain_http_port_names_the_scheme_and_does_not_say_retrying() -> None:
    target = dataclasses.replace(RGW, endpoint_url="https://127.0.0.1:7480")
    err = from_client_error(Exception(TLS_TO_HTTP), target)
    assert type(err) is DestinationError
    assert "http://" in err.diagnosis and "endpointUrl" in err.diagnosis
    assert "retrying" not in err.diagnosis
