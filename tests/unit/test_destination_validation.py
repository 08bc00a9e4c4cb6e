from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from s3dest.destinations.rules import ValidatedDestination, validate_destination
from s3dest.destinations.schemas import (
    DestinationCreate,
    DestinationPublic,
    invalid_input_from_errors,
    merge_update,
    parse_create,
    parse_update,
)
from s3dest.errors import InvalidInput, KeyTemplateInvalid
from s3dest.s3.masking import mask_access_key_id
from s3dest.store.destinations import DestinationRow

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # 40 characters, AWS's example
KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SESSION = "FwoGZXIvYXdzEBYaDHqa0AP1SecretSessionTokenValue"


def no_warnings(template: str) -> list[str]:
    return []


def any_endpoint(host: str, port: int) -> None:
    """Unit tests resolve no names: every host passes here. The endpoint policy has its
    own tests (tests/security/test_egress_policy.py, test_endpoints.py)."""


def good(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "name": "ampersandS3Bucket",
        "bucket": "ampersand-integration-bucket",
        "region": "us-west-2",
        "accessKeyId": KEY_ID,
        "secretAccessKey": SECRET,
    }
    fields.update(overrides)
    return fields


def validate(**overrides: Any) -> ValidatedDestination:
    return validate_destination(
        good(**overrides), check_endpoint=any_endpoint, check_key_template=no_warnings
    )


def errors_of(**overrides: Any) -> dict[str, str]:
    with pytest.raises(InvalidInput) as info:
        validate(**overrides)
    return info.value.fields


def assert_no_secrets(text: str) -> None:
    assert SECRET not in text
    assert SESSION not in text


# ------------------------------------------------------------------ the whole


def test_reference_page_destination_is_valid_with_defaults() -> None:
    result = validate()
    assert result.name == "ampersandS3Bucket"
    assert result.bucket == "ampersand-integration-bucket"
    assert result.region == "us-west-2"
    assert result.access_key_id == KEY_ID
    assert result.secret_access_key == SECRET
    assert result.session_token is None
    assert result.key_template is None
    assert result.storage_class == "STANDARD"
    assert result.endpoint_url is None
    assert result.write_mode == "overwrite"
    assert result.enabled is True
    assert result.warnings == []


def test_every_error_is_collected_into_one_invalid_input() -> None:
    with pytest.raises(InvalidInput) as info:
        validate_destination(
            {
                "name": "-bad name",
                "bucket": "My_Bucket",
                "region": "oregon",
                "accessKeyId": "",
                "secretAccessKey": "short",
                "storageClass": "cold",
                "writeMode": "append",
            },
            check_endpoint=any_endpoint,
            check_key_template=no_warnings,
        )
    fields = info.value.fields
    assert set(fields) == {
        "name",
        "bucket",
        "region",
        "accessKeyId",
        "secretAccessKey",
        "storageClass",
        "writeMode",
    }
    assert "7 fields" in info.value.message
    assert info.value.code == "invalid_input"


def test_single_error_message_is_the_field_message() -> None:
    with pytest.raises(InvalidInput) as info:
        validate(bucket="ab")
    assert info.value.message.startswith("invalid destination: bucket names must be")


def test_validated_destination_repr_hides_secrets() -> None:
    result = validate(accessKeyId="ASIAIOSFODNN7EXAMPLE", sessionToken=SESSION)
    assert_no_secrets(repr(result))
    assert result.session_token == SESSION


def stored(result: ValidatedDestination) -> DestinationRow:
    """The row a create would store for ``result`` (a placeholder ciphertext)."""
    fields = asdict(result)
    for name in ("secret_access_key", "session_token", "warnings"):
        del fields[name]
    tags = fields.pop("tags")
    del fields["batch"]  # asdict made it a dict; the row holds its JSON
    return DestinationRow(
        id="d-1",
        project_id="p-1",
        **fields,
        tags_json=json.dumps(tags) if tags else None,
        batch_json=result.batch.to_json() if result.batch else None,
        external_id=None,
        secret_access_key_enc="ciphertext",
        session_token_enc=None,
        failing_since=None,
        diagnosis=None,
        last_error_code=None,
        probe_attempts=0,
        next_probe_at=None,
        verified_at=None,
        version=1,
        created_at=0.0,
        updated_at=0.0,
    )


def test_public_fields_mask_the_key_and_omit_secrets() -> None:
    public = DestinationPublic.from_row(stored(validate(storageClass="glacier_ir"))).model_dump()
    assert public["accessKeyId"] == "AKIA…MPLE"
    assert public["storageClass"] == "GLACIER_IR"
    assert "secretAccessKey" not in public
    assert "sessionToken" not in public
    assert_no_secrets(repr(public))


def test_unrelated_keys_of_a_stored_row_are_ignored() -> None:
    assert validate(id="d-1", status="ok", createdAt="now").name == "ampersandS3Bucket"


def test_secretstr_values_are_accepted() -> None:
    result = validate(secretAccessKey=SecretStr(SECRET))
    assert result.secret_access_key == SECRET


# ----------------------------------------------------------------------- name


@pytest.mark.parametrize(
    "name", ["a", "ampersandS3Bucket", "s3-prod.v2_backup", "9lives", "x" * 64]
)
def test_good_names(name: str) -> None:
    assert validate(name=name).name == name


def test_name_is_trimmed() -> None:
    assert validate(name="  mine ").name == "mine"


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "name is required"),
        ("   ", "name is required"),
        (None, "name is required"),
        ("-leading", "starts with '-'"),
        ("_x", "starts with '_'"),
        ("has space", "a space"),
        ("a/b", "'/'"),
        ("x" * 65, "at most 64 characters; this one has 65"),
    ],
)
def test_bad_names(name: str | None, fragment: str) -> None:
    assert fragment in errors_of(name=name)["name"]


def test_name_must_be_a_string() -> None:
    assert errors_of(name=5)["name"] == "name must be a string, not a number."


# --------------------------------------------------------------------- bucket


@pytest.mark.parametrize(
    "bucket",
    ["ampersand-integration-bucket", "abc", "a.b.c", "my.bucket-2024", "1bucket9", "a" * 63],
)
def test_good_buckets(bucket: str) -> None:
    assert validate(bucket=bucket).bucket == bucket


def test_bucket_message_names_the_problems_and_the_fix() -> None:
    message = errors_of(bucket="My_Bucket")["bucket"]
    assert message == (
        "bucket names must be 3–63 characters of lower-case letters, digits, dots and "
        "hyphens; 'My_Bucket' has upper-case letters and '_'. Use the bucket's exact name "
        "as shown in the S3 console."
    )


@pytest.mark.parametrize(
    ("bucket", "fragment"),
    [
        ("", "bucket is required"),
        ("ab", "'ab' is 2 characters long"),
        ("a" * 64, "is 64 characters long"),
        ("-bucket", "starts with '-'"),
        ("bucket.", "ends with '.'"),
        ("my..bucket", "two dots in a row"),
        ("192.168.5.4", "formatted like an IP address"),
        ("my bucket", "a space"),
        ("bücket", "'ü'"),
        ("xn--bucket", "cannot start with 'xn--'"),
        ("sthree-bucket", "cannot start with 'sthree-'"),
        ("amzn-s3-demo-bucket", "cannot start with 'amzn-s3-demo-'"),
        ("mybucket-s3alias", "access point alias"),
        ("mybucket--ol-s3", "Object Lambda"),
        ("mybucket.mrap", "Multi-Region Access Point"),
        ("mybucket--table-s3", "table bucket"),
        ("s3://my-bucket/prefix", "is an S3 URI; give only the bucket name, 'my-bucket'"),
        ("arn:aws:s3:::my-bucket", "is an ARN; give only the bucket name, 'my-bucket'"),
        ("my-bucket/some/prefix", "is a path; give only the bucket name, 'my-bucket'"),
        ("https://my-bucket.s3.us-west-2.amazonaws.com", "'my-bucket'"),
        ("my-bucket.s3.us-west-2.amazonaws.com", "is an S3 host name"),
    ],
)
def test_bad_buckets(bucket: str, fragment: str) -> None:
    message = errors_of(bucket=bucket)["bucket"]
    assert fragment in message
    assert message.endswith(".")


def test_directory_bucket_needs_express_onezone_and_vice_versa() -> None:
    assert "EXPRESS_ONEZONE" in errors_of(bucket="my-bucket--usw2-az1--x-s3")["bucket"]
    assert "directory bucket" in errors_of(storageClass="EXPRESS_ONEZONE")["bucket"]
    result = validate(bucket="my-bucket--usw2-az1--x-s3", storageClass="express_onezone")
    assert result.storage_class == "EXPRESS_ONEZONE"
    assert result.bucket == "my-bucket--usw2-az1--x-s3"


@pytest.mark.parametrize("bucket", ["my.bucket--usw2-az1--x-s3", "my-bucket--nozone--x-s3"])
def test_malformed_directory_bucket_names(bucket: str) -> None:
    message = errors_of(bucket=bucket, storageClass="EXPRESS_ONEZONE")["bucket"]
    assert "base-name--<zone-id>--x-s3" in message


def test_invalid_storage_class_does_not_add_a_bucket_pairing_error() -> None:
    fields = errors_of(bucket="my-bucket--usw2-az1--x-s3", storageClass="fast")
    assert set(fields) == {"storageClass"}


def test_aws_reserved_names_are_allowed_with_a_custom_endpoint() -> None:
    result = validate(
        bucket="sthree-things", endpointUrl="http://localhost:9000", accessKeyId="minioadmin"
    )
    assert result.bucket == "sthree-things"


# --------------------------------------------------------------------- region


@pytest.mark.parametrize(
    "region",
    [
        "us-west-2",
        "us-east-1",
        "eu-central-1",
        "ap-southeast-3",
        "ap-northeast-1",
        "us-gov-west-1",
        "cn-north-1",
        "cn-northwest-1",
        "il-central-1",
        "mx-central-1",
        "ca-west-1",
        "us-iso-east-1",
        "us-isob-east-1",
        "eusc-de-east-1",
    ],
)
def test_good_aws_regions(region: str) -> None:
    assert validate(region=region).region == region


def test_region_is_lower_cased() -> None:
    assert validate(region=" US-West-2 ").region == "us-west-2"


@pytest.mark.parametrize(
    ("region", "fragment"),
    [
        ("", "region is required"),
        ("oregon", "'oregon' is not one"),
        ("us-west", "is not one"),
        ("uswest2", "is not one"),
        ("us_west_2", "is not one"),
        ("auto", "also set endpointUrl"),
        ("us-west-2a", "availability zone; 'us-west-2a' is a zone of the region 'us-west-2'"),
    ],
)
def test_bad_aws_regions(region: str, fragment: str) -> None:
    assert fragment in errors_of(region=region)["region"]


@pytest.mark.parametrize("region", ["auto", "garage", "us-east-1", "local1"])
def test_any_simple_region_with_custom_endpoint(region: str) -> None:
    result = validate(region=region, endpointUrl="https://s3.example.com")
    assert result.region == region


@pytest.mark.parametrize("region", ["Auto", "my region", "x_y", "a" * 65])
def test_bad_regions_with_custom_endpoint(region: str) -> None:
    fields = errors_of(region=region, endpointUrl="https://s3.example.com")
    assert "lower-case letters, digits and hyphens" in fields["region"]


# ---------------------------------------------------------------- access keys


@pytest.mark.parametrize("key_id", [KEY_ID, "AKIA" + "A" * 12, "AKIA" + "7" * 124])
def test_good_access_key_ids(key_id: str) -> None:
    assert validate(accessKeyId=key_id).access_key_id == key_id


@pytest.mark.parametrize(
    ("key_id", "fragment"),
    [
        ("", "accessKeyId is required"),
        ("AKIASHORT", "has 9 characters"),
        ("AKIA" + "A" * 125, "has 129 characters"),
        ("akiaiosfodnn7example", "has lower-case letters"),
        ("AKIA-IOSFODNN7EXAMPLE", "has '-'"),
        ("AKIA IOSFODNN7EXAMPLE", "whitespace"),
        ("AIDAIOSFODNN7EXAMPLE", "an IAM user's unique ID"),
        ("AROAIOSFODNN7EXAMPLE", "an IAM role's unique ID"),
        (SECRET.replace("/", "A"), "looks like a secret access key"),
    ],
)
def test_bad_access_key_ids(key_id: str, fragment: str) -> None:
    message = errors_of(accessKeyId=key_id)["accessKeyId"]
    assert fragment in message
    assert key_id.strip() not in message or not key_id.strip()


def test_unusual_access_key_prefix_is_a_warning() -> None:
    result = validate(accessKeyId="ABCDIOSFODNN7EXAMPLE")
    assert any("starts with 'ABCD'" in w for w in result.warnings)


def test_temporary_credentials_need_a_session_token() -> None:
    message = errors_of(accessKeyId="ASIAIOSFODNN7EXAMPLE")["sessionToken"]
    assert "temporary credentials" in message
    result = validate(accessKeyId="ASIAIOSFODNN7EXAMPLE", sessionToken=SESSION)
    assert result.session_token == SESSION
    assert result.warnings == []


def test_session_token_with_long_term_key_is_a_warning() -> None:
    result = validate(sessionToken=SESSION)
    assert any("long-term" in w for w in result.warnings)


@pytest.mark.parametrize("key_id", ["minioadmin", "GK31c2f218a2e44f485b94239e", "abc", "a.b_c-d"])
def test_custom_endpoint_access_key_ids(key_id: str) -> None:
    result = validate(accessKeyId=key_id, endpointUrl="http://localhost:9000")
    assert result.access_key_id == key_id
    assert result.warnings == []


@pytest.mark.parametrize("key_id", ["ab", "a/b+c", "x" * 129])
def test_bad_custom_endpoint_access_key_ids(key_id: str) -> None:
    fields = errors_of(accessKeyId=key_id, endpointUrl="http://localhost:9000")
    assert "3–128 letters" in fields["accessKeyId"]


def test_secret_access_key_rules() -> None:
    assert "secretAccessKey is required" in errors_of(secretAccessKey="  ")["secretAccessKey"]
    assert "secretAccessKey is required" in errors_of(secretAccessKey=None)["secretAccessKey"]
    assert "whitespace" in errors_of(secretAccessKey="abcd efgh ijkl mnop qrst")["secretAccessKey"]
    short = errors_of(secretAccessKey="abcdefghijklmno")["secretAccessKey"]
    assert "at least 16 characters (AWS secret access keys have 40)" in short
    assert "has 15" in short
    assert "at most 1024" in errors_of(secretAccessKey="a" * 1025)["secretAccessKey"]
    same = errors_of(secretAccessKey=KEY_ID)["secretAccessKey"]
    assert "same as accessKeyId" in same


def test_secret_with_surrounding_newline_is_trimmed() -> None:
    assert validate(secretAccessKey=SECRET + "\n").secret_access_key == SECRET


def test_secret_of_unusual_length_is_a_warning_on_aws() -> None:
    result = validate(secretAccessKey="a" * 30)
    assert any("30 characters" in w for w in result.warnings)


def test_custom_endpoint_secret_minimum_is_8() -> None:
    endpoint = "http://localhost:9000"
    result = validate(secretAccessKey="minio123", accessKeyId="minio", endpointUrl=endpoint)
    assert result.secret_access_key == "minio123"
    fields = errors_of(secretAccessKey="short", accessKeyId="minio", endpointUrl=endpoint)
    assert "at least 8 characters" in fields["secretAccessKey"]


def test_session_token_rules() -> None:
    assert validate(sessionToken="").session_token is None
    assert validate(sessionToken=None).session_token is None
    bad = errors_of(accessKeyId="ASIAIOSFODNN7EXAMPLE", sessionToken="abc def")
    assert "whitespace" in bad["sessionToken"]


def test_no_message_contains_secret_values() -> None:
    with pytest.raises(InvalidInput) as info:
        validate_destination(
            {
                "name": SECRET,
                "bucket": SECRET,
                "region": SECRET,
                "accessKeyId": SECRET,
                "secretAccessKey": SECRET + " " + SESSION,
                "sessionToken": SESSION + " x",
            },
            check_endpoint=any_endpoint,
            check_key_template=no_warnings,
        )
    error = info.value
    assert SESSION not in str(error)
    assert SESSION not in repr(error.fields)
    assert "accessKeyId" in error.fields
    assert SECRET not in error.fields["accessKeyId"]
    assert SECRET not in error.fields["secretAccessKey"]
    assert SESSION not in error.fields["sessionToken"]


# -------------------------------------------------------------- storage class


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("standard_ia", "STANDARD_IA"),
        ("Standard-IA", "STANDARD_IA"),
        ("glacier", "GLACIER"),
        ("DEEP_ARCHIVE", "DEEP_ARCHIVE"),
        ("intelligent_tiering", "INTELLIGENT_TIERING"),
        (None, "STANDARD"),
        ("", "STANDARD"),
    ],
)
def test_storage_class_is_canonical(given: str | None, canonical: str) -> None:
    assert validate(storageClass=given).storage_class == canonical


def test_unknown_storage_class() -> None:
    message = errors_of(storageClass="cold")["storageClass"]
    assert "unknown storage class 'cold'" in message
    assert "STANDARD_IA" in message
    assert "must be a string" in errors_of(storageClass=3)["storageClass"]


def test_reduced_redundancy_is_a_warning() -> None:
    assert validate(storageClass="REDUCED_REDUNDANCY").warnings


# --------------------------------------------------------------- endpoint URL


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("https://minio.example.com:9000", "https://minio.example.com:9000"),
        ("https://minio.example.com:9000/", "https://minio.example.com:9000"),
        ("HTTPS://S3.Example.COM", "https://s3.example.com"),
        ("http://localhost:9000", "http://localhost:9000"),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
        ("http://[::1]:9000", "http://[::1]:9000"),
        ("https://abc123.r2.cloudflarestorage.com", "https://abc123.r2.cloudflarestorage.com"),
        ("", None),
        (None, None),
    ],
)
def test_good_endpoint_urls(url: str | None, canonical: str | None) -> None:
    result = validate(endpointUrl=url, region="auto" if url else "us-west-2")
    assert result.endpoint_url == canonical
    assert result.warnings == []


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("minio:9000", "must start with http:// or https://"),
        ("ftp://host", "must start with http:// or https://"),
        ("https://", "must name a host"),
        ("https://user:s3cr3tpw@minio:9000", "must not contain credentials"),
        ("https://minio:9000?x=1", "query string or fragment"),
        ("https://minio:9000#frag", "query string or fragment"),
        ("https://minio:9000/my-bucket", "If 'my-bucket' is the bucket"),
        ("https://minio:99999", "invalid port"),
        ("https://mi nio:9000", "must not contain spaces"),
        # urlsplit raised ValueError on these: a traceback in the CLI (issue 15 item 8)
        ("http://[::1", "not a URL"),
        ("https://[minio]:9000", "not a URL"),
    ],
)
def test_bad_endpoint_urls(url: str, fragment: str) -> None:
    message = errors_of(endpointUrl=url)["endpointUrl"]
    assert fragment in message
    assert "s3cr3tpw" not in message


def test_plain_http_to_a_remote_host_is_a_warning() -> None:
    result = validate(endpointUrl="http://minio.internal:9000", accessKeyId="minioadmin")
    assert any("http://" in w for w in result.warnings)


# ----------------------------------------------------------- write mode etc.


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        (None, "overwrite"),
        ("overwrite", "overwrite"),
        ("create-only", "create-only"),
        ("Create_Only", "create-only"),
    ],
)
def test_write_modes(given: str | None, canonical: str) -> None:
    assert validate(writeMode=given).write_mode == canonical


def test_bad_write_mode() -> None:
    assert "'overwrite'" in errors_of(writeMode="append")["writeMode"]


def test_enabled() -> None:
    assert validate(enabled=False).enabled is False
    assert validate().enabled is True
    assert "true or false" in errors_of(enabled="yes")["enabled"]


# --------------------------------------------------------------- key template


def test_key_template_checker_warnings_are_returned() -> None:
    seen: list[str] = []

    def checker(template: str) -> list[str]:
        seen.append(template)
        return ["the key omits event-id"]

    result = validate_destination(
        good(keyTemplate=" join('/', [metadata.objectName]) "),
        check_endpoint=any_endpoint,
        check_key_template=checker,
    )
    assert seen == ["join('/', [metadata.objectName])"]
    assert result.key_template == "join('/', [metadata.objectName])"
    assert result.warnings == ["the key omits event-id"]


def test_key_template_not_checked_when_absent() -> None:
    def checker(template: str) -> list[str]:
        raise AssertionError("not called")

    assert (
        validate_destination(
            good(keyTemplate=""), check_endpoint=any_endpoint, check_key_template=checker
        ).key_template
        is None
    )


def test_key_template_invalid_is_placed_under_key_template() -> None:
    def by_fields(template: str) -> list[str]:
        raise KeyTemplateInvalid("bad", {"keyTemplate": "unknown function foo()"})

    def by_message(template: str) -> list[str]:
        raise KeyTemplateInvalid("the template renders to an empty key")

    with pytest.raises(InvalidInput) as info:
        validate_destination(
            good(keyTemplate="foo()", bucket="x"),
            check_endpoint=any_endpoint,
            check_key_template=by_fields,
        )
    assert info.value.fields["keyTemplate"] == "unknown function foo()."
    assert "bucket" in info.value.fields

    with pytest.raises(InvalidInput) as info:
        validate_destination(
            good(keyTemplate="''"), check_endpoint=any_endpoint, check_key_template=by_message
        )
    assert info.value.fields == {"keyTemplate": "the template renders to an empty key."}


# --------------------------------------------------------------------- models


def test_create_model_repr_hides_secrets() -> None:
    body = DestinationCreate.model_validate(
        good(accessKeyId="ASIAIOSFODNN7EXAMPLE", sessionToken=SESSION)
    )
    assert_no_secrets(repr(body))
    assert_no_secrets(str(body))
    assert_no_secrets(body.model_dump_json())
    fields = body.to_fields()
    assert fields["secretAccessKey"] == SECRET
    assert fields["sessionToken"] == SESSION
    assert fields["writeMode"] == "overwrite"
    assert fields["enabled"] is True
    assert (
        validate_destination(
            fields, check_endpoint=any_endpoint, check_key_template=no_warnings
        ).session_token
        == SESSION
    )


def test_create_model_rejects_unknown_fields_by_name() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_create(good(bucketName="x", secret=SECRET))
    assert set(info.value.fields) == {"bucketName", "secret"}
    assert "'bucketName' is not a field of a destination" in info.value.fields["bucketName"]
    assert SECRET not in str(info.value.fields)


def test_create_model_missing_and_wrong_types() -> None:
    with pytest.raises(ValidationError) as info:
        DestinationCreate.model_validate({"name": 3, "writeMode": "append"})
    assert SECRET not in str(info.value)
    converted = invalid_input_from_errors(info.value.errors())
    assert converted.fields["name"] == "name must be a string."
    assert "bucket is required" in converted.fields["bucket"]
    # keys or roleArn: which one is the rules' question, on the whole destination
    assert "secretAccessKey" not in converted.fields
    assert "'create-only'" in converted.fields["writeMode"]


def test_pydantic_errors_never_echo_secret_inputs() -> None:
    with pytest.raises(ValidationError) as info:
        DestinationCreate.model_validate(good(secretAccessKey=["x", SECRET]))
    assert SECRET not in str(info.value)


def test_fastapi_body_locations_are_stripped() -> None:
    converted = invalid_input_from_errors(
        [
            {"type": "missing", "loc": ("body", "region"), "msg": "Field required"},
            {"type": "model_attributes_type", "loc": ("body",), "msg": "x"},
        ]
    )
    assert "region is required" in converted.fields["region"]
    assert "JSON object" in converted.fields["body"]


def test_update_distinguishes_absent_from_null() -> None:
    update = parse_update({"sessionToken": None, "keyTemplate": None, "bucket": "other-bucket"})
    assert update.model_fields_set == {"sessionToken", "keyTemplate", "bucket"}
    assert update.changes() == {"sessionToken": None, "keyTemplate": None, "bucket": "other-bucket"}

    existing = good(
        accessKeyId="AKIAIOSFODNN7EXAMPLE",
        sessionToken=SESSION,
        keyTemplate="metadata.operationId",
        storageClass="GLACIER",
        id="dest-1",
    )
    merged = merge_update(existing, update)
    result = validate_destination(
        merged, check_endpoint=any_endpoint, check_key_template=no_warnings
    )
    assert result.session_token is None
    assert result.key_template is None
    assert result.bucket == "other-bucket"
    assert result.storage_class == "GLACIER"  # not given: kept
    assert result.secret_access_key == SECRET


def test_update_null_resets_storage_class_and_write_mode() -> None:
    update = parse_update({"storageClass": None, "writeMode": None})
    merged = merge_update(good(storageClass="GLACIER", writeMode="create-only"), update)
    result = validate_destination(
        merged, check_endpoint=any_endpoint, check_key_template=no_warnings
    )
    assert (result.storage_class, result.write_mode) == ("STANDARD", "overwrite")


@pytest.mark.parametrize("field", ["name", "bucket", "region", "enabled"])
def test_update_rejects_null_for_required_fields(field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_update({field: None})
    assert info.value.fields[field] == (
        f"{field} cannot be null; leave it out of the update to keep the current value."
    )


def test_update_rejects_unknown_fields_and_hides_secrets() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_update({"colour": "red"})
    assert "'colour' is not a field" in info.value.fields["colour"]
    update = parse_update({"secretAccessKey": SECRET, "sessionToken": SESSION})
    assert_no_secrets(repr(update))
    assert update.changes()["secretAccessKey"] == SECRET


def test_empty_update_changes_nothing() -> None:
    update = parse_update({})
    assert update.changes() == {}
    assert merge_update(good(), update) == good()


# -------------------------------------------------------------------- masking


@pytest.mark.parametrize(
    ("key_id", "masked"),
    [
        ("AKIAIOSFODNN7EXAMPLE", "AKIA…MPLE"),
        ("AKIA12345678WXYZ", "AKIA…WXYZ"),
        ("ABCDEFGHIJKL", "ABCD…IJKL"),
        ("minioadmin", "…dmin"),
        ("abcde", "…bcde"),
        ("abcd", "…"),
        ("", "…"),
    ],
)
def test_mask_access_key_id(key_id: str, masked: str) -> None:
    assert mask_access_key_id(key_id) == masked


# Issue 14: without endpointUrl the region is checked against the AWS partitions (botocore's
# lists); region-shaped strings that no partition has are refused, naming the field and fix.
@pytest.mark.parametrize("region", ["mars-1", "us-mars-1", "us-north-9", "eu-west-99", "cn-east-7"])
def test_regions_no_partition_has_are_refused(region: str) -> None:
    message = errors_of(region=region)["region"]
    assert f"{region!r} is not one" in message
    assert "us-gov-west-1" in message and "cn-north-1" in message
    assert "endpointUrl" in message


@pytest.mark.parametrize("region", ["mars-1", "us-north-9"])
def test_any_region_string_with_a_custom_endpoint(region: str) -> None:
    assert validate(region=region, endpointUrl="https://s3.example.com").region == region
