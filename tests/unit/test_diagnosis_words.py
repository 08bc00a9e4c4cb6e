"""Every diagnosis word for word: a person reads these sentences and acts on them, so each
is pinned whole, built from the destination it names (bucket, region, key id, endpoint).

The obstore texts are shaped as in test_diagnosis.py. Found by `make mutate`
(docs/mutation.md, session 9): these wordings, and several of the branches that choose
them, had survived every unit test.
"""

from __future__ import annotations

import dataclasses

import pytest
from tests.unit.test_diagnosis import TARGET, URL, _debug

from s3dest.errors import DeliveryError, DestinationError, TransientDeliveryError
from s3dest.s3.diagnosis import (
    Target,
    diagnose,
    endpoint_not_allowed,
    from_client_error,
    is_region_redirect,
    putobject_policy,
    redirect_not_followed,
)
from s3dest.s3.policy import PolicyInputs, policy_json, write_policy

BUCKET, KEY_ID = TARGET.bucket, TARGET.access_key_id_masked  # acme-data, AKIA…MPLE
STORE_URL = "http://127.0.0.1:7480"
STORE = dataclasses.replace(TARGET, endpoint_url=STORE_URL)
ROLE = "arn:aws:iam::123456789012:role/writer"
ROLE_TARGET = dataclasses.replace(TARGET, access_key_id_masked="", role_arn=ROLE)

# The document the plain key's advice shows, as a person pastes it into the IAM console.
PUT_ONLY = (
    "{\n"
    '  "Version": "2012-10-17",\n'
    '  "Statement": [\n'
    "    {\n"
    '      "Effect": "Allow",\n'
    '      "Action": "s3:PutObject",\n'
    f'      "Resource": "arn:aws:s3:::{BUCKET}/*"\n'
    "    }\n"
    "  ]\n"
    "}"
)


def _said(message: str) -> str:
    return f"<Error><Code>X</Code><Message>{message}</Message></Error>"


def _check(err: DeliveryError, cls: type[DeliveryError], message: str, diagnosis: str) -> None:
    assert type(err) is cls
    assert err.message == message
    assert err.diagnosis == diagnosis


# -- the policy to paste ------------------------------------------------------------------------


def test_the_putobject_policy_is_indented_for_pasting_and_names_the_partition() -> None:
    assert putobject_policy(BUCKET) == PUT_ONLY
    assert putobject_policy(BUCKET, "aws-cn") == PUT_ONLY.replace("arn:aws:", "arn:aws-cn:")


# -- the wrong region ---------------------------------------------------------------------------


def test_a_301_without_a_region_says_to_check_the_bucket_region() -> None:
    err = diagnose(status=301, s3_code=None, text="", target=TARGET)
    sentence = (
        f"S3 refused the request for bucket '{BUCKET}' because it was sent to the wrong region "
        f"('{TARGET.region}'). Check the bucket's region in the S3 console (bucket properties) "
        "and set it on the destination."
    )
    _check(err, DestinationError, sentence, sentence)
    assert (err.s3_code, err.status) == (None, 301)


def test_a_region_header_alone_names_the_buckets_region() -> None:
    # x-amz-bucket-region, on an answer that has neither a 301 nor a region error code
    err = diagnose(status=400, s3_code=None, text="", target=TARGET, region_header="ap-southeast-2")
    sentence = (
        f"The bucket '{BUCKET}' is in region 'ap-southeast-2', not '{TARGET.region}'. "
        "Change the destination's region to 'ap-southeast-2'."
    )
    _check(err, DestinationError, sentence, sentence)


def test_the_region_diagnosis_leaves_s3s_words_to_the_message() -> None:
    said = f"the region '{TARGET.region}' is wrong; expecting 'eu-west-1'"
    err = diagnose(
        status=400, s3_code="AuthorizationHeaderMalformed", text=_said(said), target=TARGET
    )
    sentence = (
        f"The bucket '{BUCKET}' is in region 'eu-west-1', not '{TARGET.region}'. "
        "Change the destination's region to 'eu-west-1'."
    )
    _check(
        err,
        DestinationError,
        f"{sentence} (S3 said: AuthorizationHeaderMalformed: {said})",
        sentence,
    )


# -- refused writes -----------------------------------------------------------------------------


_UNENCRYPTED_HINT = (
    "Buckets often deny writes that are not server-side encrypted: set the destination's "
    "serverSideEncryption to 'AES256' or 'aws:kms' (with kmsKeyId if the policy names a key)."
)
_ENCRYPTED_HINT = (
    "The destination already asks for server-side encryption; check what else the bucket "
    "policy's Deny requires (a particular serverSideEncryption or kmsKeyId, a source VPC, TLS)."
)


def _plain_denied(key_id: str, hint: str = _UNENCRYPTED_HINT) -> str:
    return (
        f"Access denied: the credentials (access key {key_id}) are not allowed to write to "
        f"bucket '{BUCKET}'. They need s3:PutObject on arn:aws:s3:::{BUCKET}/*. Attach this "
        f"policy to the IAM user or role:\n{PUT_ONLY}\nIf they already have it, the bucket "
        "policy denies the write with an explicit Deny, which no IAM permission overrides. "
        f"{hint} If the bucket encrypts with a customer-managed KMS key, the key policy must "
        "also allow kms:GenerateDataKey."
    )


@pytest.mark.parametrize("code", ["AccessDenied", "AllAccessDisabled", None])
def test_a_plain_key_refused_gets_the_putobject_policy(code: str | None) -> None:
    err = diagnose(status=403, s3_code=code, text=_said("Access Denied"), target=TARGET)
    _check(
        err, DestinationError, f"AccessDenied writing to bucket '{BUCKET}'", _plain_denied(KEY_ID)
    )


def test_an_encrypting_plain_key_refused_is_told_to_check_the_bucket_policys_terms() -> None:
    # Ceph RGW answers a bucket policy's Deny with a bare AccessDenied (no Message).
    aes = dataclasses.replace(TARGET, policy=PolicyInputs(BUCKET, encrypted=True))
    err = diagnose(status=403, s3_code="AccessDenied", text="<Code>AccessDenied</Code>", target=aes)
    _check(
        err,
        DestinationError,
        f"AccessDenied writing to bucket '{BUCKET}'",
        _plain_denied(KEY_ID, _ENCRYPTED_HINT),
    )


def _write_denied(who: str, kind: str, inputs: PolicyInputs, extra: str = "") -> str:
    return (
        f"Access denied: {who} is not allowed to write to bucket '{BUCKET}' as this "
        f"destination is configured.{extra} Attach this policy to the {kind}:\n"
        f"{policy_json(write_policy(inputs))}\nA bucket policy with an explicit Deny (for "
        "example one that refuses unencrypted writes: set serverSideEncryption) overrides it."
    )


@pytest.mark.parametrize("code", ["AccessDenied", "AllAccessDisabled", None])
def test_a_role_refused_gets_the_roles_policy(code: str | None) -> None:
    err = diagnose(status=403, s3_code=code, text=_said("Access Denied"), target=ROLE_TARGET)
    expected = _write_denied(f"the role {ROLE}", "role", PolicyInputs(bucket=BUCKET))
    _check(err, DestinationError, f"AccessDenied writing to bucket '{BUCKET}'", expected)
    assert f"arn:aws:s3:::{BUCKET}/*" in expected  # the role's policy names this bucket


def test_a_key_whose_options_need_more_gets_the_whole_policy() -> None:
    inputs = PolicyInputs(bucket=BUCKET, acl=True)
    target = dataclasses.replace(TARGET, policy=inputs)
    err = diagnose(status=403, s3_code="AccessDenied", text=_said("Access Denied"), target=target)
    extra = (
        " With acl or tags S3 checks s3:PutObjectAcl / s3:PutObjectTagging on the same PUT, so "
        "each must be allowed too."
    )
    expected = _write_denied(f"access key {KEY_ID}", "IAM user or role", inputs, extra)
    _check(err, DestinationError, f"AccessDenied writing to bucket '{BUCKET}'", expected)
    assert '"s3:PutObjectAcl"' in expected


KMS_SAID = (
    "User: arn:aws:iam::123456789012:user/w is not authorized to perform: kms:GenerateDataKey "
    "on resource: arn:aws:kms:us-east-1:123456789012:key/k"
)


def _kms_denied(said: str) -> str:
    statement = {
        "Effect": "Allow",
        "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
        "Resource": "*",
    }
    return (
        f"KMS refused: access key {KEY_ID} may not use the bucket's KMS key to encrypt objects "
        f"in bucket '{BUCKET}' (kms:GenerateDataKey and kms:Decrypt are needed; S3 said: "
        f"{said}). Add this statement to its policy, and allow the same in the key's key policy "
        f"if the key is in another account:\n{policy_json(statement)}"
    )


def test_a_kms_refusal_of_a_plain_key_is_told_as_kms() -> None:
    # No policy inputs (the destination asks for no KMS): AWS's message alone says KMS.
    err = diagnose(status=403, s3_code="AccessDenied", text=_said(KMS_SAID), target=TARGET)
    _check(
        err,
        DestinationError,
        f"KMS AccessDenied writing to bucket '{BUCKET}'",
        _kms_denied(KMS_SAID),
    )


def test_the_reason_is_searched_in_the_first_4096_characters_of_the_message() -> None:
    # A bound on the work an endpoint's reply can cause: "kms:" starting at character 4,094
    # is beyond it, and the plain advice is given.
    said = "x" * 4093 + "kms:GenerateDataKey"
    err = diagnose(status=403, s3_code="AccessDenied", text=_said(said), target=TARGET)
    assert err.diagnosis == _plain_denied(KEY_ID)
    within = diagnose(status=403, s3_code="AccessDenied", text=_said(said[1:]), target=TARGET)
    assert within.diagnosis.startswith("KMS refused:")


@pytest.mark.parametrize(
    ("status", "code"),
    [(404, "NoSuchBucket"), (404, None), (400, "InvalidRequest"), (401, None), (403, "Other")],
)
def test_a_role_gets_the_role_advice_only_when_it_is_refused(status: int, code: str) -> None:
    on_role = diagnose(status=status, s3_code=code, text=_said("m"), target=ROLE_TARGET)
    with_key = diagnose(status=status, s3_code=code, text=_said("m"), target=TARGET)
    assert (type(on_role), on_role.message, on_role.diagnosis) == (
        type(with_key),
        with_key.message,
        with_key.diagnosis,
    )
    assert "role" not in on_role.diagnosis


# -- credentials --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "words"),
    [
        (
            TARGET,
            f"AWS does not recognise the access key id {KEY_ID}: it was deleted or deactivated, "
            "mistyped, or belongs to another AWS partition. Create a new access key for the IAM "
            "user and update the destination's access key id and secret.",
        ),
        (
            STORE,
            f"The storage service at {STORE_URL} does not recognise the access key id {KEY_ID}: "
            "it was deleted or deactivated, mistyped, or belongs to another store or account. "
            "Create a new access key there and update the destination's access key id and "
            "secret.",
        ),
    ],
)
def test_an_unknown_access_key(target: Target, words: str) -> None:
    err = diagnose(status=403, s3_code="InvalidAccessKeyId", text="", target=target)
    _check(err, DestinationError, f"InvalidAccessKeyId for bucket '{BUCKET}'", words)


@pytest.mark.parametrize(
    ("target", "service"), [(TARGET, "AWS"), (STORE, f"the storage service at {STORE_URL}")]
)
def test_a_secret_that_does_not_match(target: Target, service: str) -> None:
    err = diagnose(status=403, s3_code="SignatureDoesNotMatch", text="", target=target)
    _check(
        err,
        DestinationError,
        f"SignatureDoesNotMatch for bucket '{BUCKET}'",
        f"The secret access key does not belong to access key id {KEY_ID}: {service} could "
        "not verify the request's signature. Paste the secret again exactly as it was shown "
        "when the key was created (no spaces or line breaks), or create a new access key.",
    )


@pytest.mark.parametrize("code", ["ExpiredToken", "TokenRefreshRequired", "InvalidToken"])
def test_a_session_token_that_no_longer_works(code: str) -> None:
    err = diagnose(status=400, s3_code=code, text="", target=TARGET)
    _check(
        err,
        DestinationError,
        f"{code} for bucket '{BUCKET}'",
        "The session token has expired or is invalid: temporary credentials only last a few "
        "hours. Update the destination with fresh temporary credentials (access key id, "
        "secret and session token together), or use an IAM user's long-lived keys without a "
        "session token.",
    )


# -- the bucket and its storage class -----------------------------------------------------------


@pytest.mark.parametrize(
    ("region", "create"),
    [
        ("us-east-1", "--region us-east-1"),  # us-east-1 takes no LocationConstraint
        (
            "eu-west-1",
            "--region eu-west-1 --create-bucket-configuration LocationConstraint=eu-west-1",
        ),
    ],
)
def test_a_missing_bucket_on_aws_says_how_to_create_it(region: str, create: str) -> None:
    target = dataclasses.replace(TARGET, region=region)
    err = diagnose(status=404, s3_code="NoSuchBucket", text="", target=target)
    _check(
        err,
        DestinationError,
        f"NoSuchBucket: {BUCKET}",
        f"The bucket '{BUCKET}' does not exist in region '{region}'. Check the exact bucket "
        "name in the S3 console (names are lower-case), or create it: aws s3api create-bucket "
        f"--bucket {BUCKET} {create}",
    )


def test_a_missing_bucket_on_another_store_names_the_endpoint() -> None:
    err = diagnose(status=404, s3_code=None, text="", target=STORE)
    _check(
        err,
        DestinationError,
        f"NoSuchBucket: {BUCKET}",
        f"The bucket '{BUCKET}' does not exist at {STORE_URL}. Check the exact bucket name in "
        "the S3 console (names are lower-case), or create it: aws s3api create-bucket "
        f"--bucket {BUCKET} --region {TARGET.region}",
    )


def test_a_storage_class_aws_refuses() -> None:
    target = dataclasses.replace(TARGET, storage_class="GLACIER_IR")
    said = "The storage class you specified is not valid"
    err = diagnose(status=400, s3_code="InvalidStorageClass", text=_said(said), target=target)
    _check(
        err,
        DestinationError,
        f"InvalidStorageClass for bucket '{BUCKET}': storageClass GLACIER_IR",
        f"The bucket '{BUCKET}' does not accept the destination's storage class (storageClass "
        f"GLACIER_IR) (S3 said: InvalidStorageClass: {said}). Set storageClass to another "
        "class (EXPRESS_ONEZONE needs a directory bucket).",
    )


def test_a_storage_class_another_store_refuses() -> None:
    target = dataclasses.replace(STORE, storage_class="GLACIER")
    err = diagnose(status=400, s3_code="InvalidArgument", text="", target=target)
    _check(
        err,
        DestinationError,
        f"InvalidArgument for bucket '{BUCKET}': storageClass GLACIER",
        f"The bucket '{BUCKET}' does not accept the destination's storage class (storageClass "
        "GLACIER). Set storageClass to another class (S3-compatible stores often support only "
        "STANDARD; Ceph RGW needs every other class declared in its zone's placement).",
    )


def test_a_feature_the_store_does_not_implement() -> None:
    said = "A header you provided implies functionality that is not implemented"
    err = diagnose(status=501, s3_code="NotImplemented", text=_said(said), target=STORE)
    sentence = (
        f"The storage service behind bucket '{BUCKET}' does not implement a feature s3dest "
        f"uses (S3 said: NotImplemented: {said}). With an S3-compatible store, try writeMode "
        "'overwrite' and storage class STANDARD."
    )
    _check(err, DestinationError, sentence, sentence)


@pytest.mark.parametrize(
    ("status", "code", "text", "words"),
    [
        (
            400,
            "InvalidRequest",
            _said("Bad thing"),
            "InvalidRequest (S3 said: InvalidRequest: Bad thing)",
        ),
        (405, None, "", "HTTP 405"),
        (307, "TemporaryRedirect", "", "TemporaryRedirect"),  # a redirect S3 explains itself
    ],
)
def test_any_other_refusal_shows_s3s_own_words(
    status: int, code: str | None, text: str, words: str
) -> None:
    err = diagnose(status=status, s3_code=code, text=text, target=TARGET)
    sentence = f"S3 refused writes to bucket '{BUCKET}': {words}"
    _check(err, DestinationError, sentence, sentence)


# -- redirects and refused endpoints ------------------------------------------------------------


@pytest.mark.parametrize("status", [302, 303, 307, 308])
def test_a_redirect_is_not_followed_and_names_the_endpoint(status: int) -> None:
    err = diagnose(status=status, s3_code=None, text="", target=STORE)
    _check(
        err,
        DestinationError,
        f"redirect not followed (HTTP {status}, a redirect)",
        f"The endpoint {STORE_URL} answered with HTTP {status}, a redirect; s3dest does not "
        "follow redirects. Set endpointUrl to the address of the storage service itself.",
    )
    assert (err.s3_code, err.status) == (None, status)


def test_a_redirect_to_another_host_on_aws() -> None:
    # What the writer raises when the client reports a redirect without its status.
    err = redirect_not_followed(TARGET, None)
    _check(
        err,
        DestinationError,
        "redirect not followed (a redirect to another host)",
        "S3 answered with a redirect to another host; s3dest does not follow redirects. Set "
        "endpointUrl to the address of the storage service itself.",
    )
    assert (err.s3_code, err.status) == (None, None)


def test_an_endpoint_the_policy_refuses_says_what_to_do() -> None:
    reason = "metadata.google.internal is a cloud metadata name"
    err = endpoint_not_allowed(reason, STORE)
    _check(
        err,
        DestinationError,
        f"endpoint not allowed: {reason}",
        f"The endpoint is not allowed: {reason}. s3dest does not connect to loopback, private, "
        "link-local or cloud metadata addresses. Point endpointUrl at the storage service's "
        "public address, or ask the operator to allow this host with "
        "S3DEST_ALLOWED_ENDPOINT_HOSTS.",
    )
    assert (err.s3_code, err.status) == (None, None)


# -- temporary failures -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "text", "reason"),
    [
        (500, "", "HTTP 500"),  # every 5xx, from 500 on
        (None, "connection reset by peer\nsecond line", "connection reset by peer"),
        (None, "  \n ", "unknown error"),
        (None, "", "unknown error"),
    ],
)
def test_a_temporary_failure_without_a_code_says_what_happened(
    status: int | None, text: str, reason: str
) -> None:
    err = diagnose(status=status, s3_code=None, text=text, target=TARGET)
    message = f"temporary S3 failure: {reason}; retrying"
    _check(err, TransientDeliveryError, message, message)


# -- obstore's texts ----------------------------------------------------------------------------


def _obstore(failure: str, inner: str) -> str:
    return f"Generic S3 error: Error performing PUT {URL} in 1.0ms - {failure}" + _debug(inner)


@pytest.mark.parametrize(
    ("text", "redirect"),
    [
        ("Received redirect without LOCATION, this normally indicates ...", True),
        (_obstore("HTTP error", "BareRedirect"), True),
        (_obstore("Server returned non-2xx status code: 301 Moved Permanently: ", "Status"), True),
        (_obstore("Server returned non-2xx status code: 302 Found: ", "Status"), False),
        (_obstore("Received redirect with a LOCATION", "Redirect"), False),
    ],
)
def test_each_way_obstore_reports_s3s_region_redirect(text: str, redirect: bool) -> None:
    assert is_region_redirect(text) is redirect


def test_a_status_without_an_error_document_is_diagnosed_by_its_status() -> None:
    text = _obstore("Server returned non-2xx status code: 404 Not Found: ", "Status { ... }")
    err = from_client_error(Exception(text), TARGET)
    assert err.message == f"NoSuchBucket: {BUCKET}" and err.status == 404


@pytest.mark.parametrize(
    "text",
    [
        _obstore("HTTP error: error sending request", "Http(HttpError { kind: Timeout })"),
        _obstore("HTTP error: request failed", "Io(Custom { kind: TimedOut })"),
        _obstore("HTTP error: operation timed out", "Io(Os { code: 110 })"),
    ],
)
def test_each_way_obstore_says_timed_out(text: str) -> None:
    err = from_client_error(Exception(text), TARGET)
    message = "S3 did not answer in time; retrying"
    _check(err, TransientDeliveryError, message, message)
    assert (err.s3_code, err.status) == (None, None)


@pytest.mark.parametrize(
    "text",
    [
        _obstore("HTTP error: error sending request", "Http(HttpError { kind: Request })"),
        _obstore("Connect error: Connection refused (os error 111)", "Io(Os { code: 111 })"),
    ],
)
def test_each_way_obstore_says_it_could_not_reach_the_endpoint(text: str) -> None:
    err = from_client_error(Exception(text), STORE)
    message = f"could not reach S3 (endpoint {STORE_URL}); retrying"
    _check(err, TransientDeliveryError, message, message)


HTTPS_STORE = dataclasses.replace(TARGET, endpoint_url="https://127.0.0.1:7480")


@pytest.mark.parametrize(
    "rustls",
    [
        "InvalidMessage(InvalidContentType)",
        "InvalidMessage(CorruptMessage)",
        "wrong version number",
    ],
)
def test_each_way_tls_says_the_port_serves_plain_http(rustls: str) -> None:
    text = _obstore("HTTP error: error sending request", f"Http(HttpError {{ {rustls} }})")
    err = from_client_error(Exception(text), HTTPS_STORE)
    _check(
        err,
        DestinationError,
        "TLS to a plain-HTTP port",
        "The endpoint https://127.0.0.1:7480 did not answer in TLS: the port serves plain "
        "HTTP. Change endpointUrl to http://… (or to the store's HTTPS port).",
    )
    # Over http:// the same words are not about TLS: the endpoint could not be reached.
    plain = from_client_error(Exception(text), STORE)
    assert plain.message == f"could not reach S3 (endpoint {STORE_URL}); retrying"


def test_an_https_endpoint_that_refuses_the_connection_is_not_called_plain_http() -> None:
    text = _obstore("HTTP error: error sending request", "Http(HttpError { kind: Connect })")
    err = from_client_error(Exception(text), HTTPS_STORE)
    message = "could not reach S3 (endpoint https://127.0.0.1:7480); retrying"
    _check(err, TransientDeliveryError, message, message)
