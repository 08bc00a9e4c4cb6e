"""The writer's small-object path, its put-only policy and its diagnoses against moto and
Ceph RGW alike (issue 14: "a second real S3 implementation in the suite").

In-process writes (no s3dest server), one module-scoped store per implementation
(tests/support/s3_stores.py).
"""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from botocore.exceptions import ClientError
from tests.support.rgw_server import RgwServer
from tests.support.s3_stores import Store

from s3dest.devtools.moto import Credentials
from s3dest.errors import DeliveryError, DestinationError, MessageDeliveryError
from s3dest.s3.writer import ObjectRequest, S3Destination, put_object


@pytest.fixture(scope="module", params=["moto", pytest.param("rgw", marks=pytest.mark.rgw)])
def store(request: pytest.FixtureRequest) -> Store:
    server = request.getfixturevalue("rgw_server" if request.param == "rgw" else "s3_server")
    return Store(request.param, server.endpoint, server.region, server.client(), server)


@pytest.fixture(scope="module")
def bucket(store: Store) -> str:
    return store.new_bucket()


@pytest.fixture(scope="module")
def putonly(store: Store, bucket: str) -> Credentials:
    return store.putonly(bucket)


def dest(store: Store, bucket: str, creds: Credentials, **changes: object) -> S3Destination:
    base = S3Destination(
        bucket=bucket,
        region=store.region,
        access_key_id=creds.access_key_id,
        secret_access_key=creds.secret_access_key,
        endpoint_url=store.endpoint,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def request(key: str | None = None) -> ObjectRequest:
    event_id = str(uuid.uuid4())
    return ObjectRequest(
        key=key or f"compat/{event_id}.json",
        body=b'{"data":{"n":1}}',
        metadata={"event-id": event_id, "objectname": "contacts"},
        event_id=event_id,
    )


def raised(destination: S3Destination, req: ObjectRequest) -> DeliveryError:
    with pytest.raises(DeliveryError) as info:
        put_object(destination, req)
    return info.value


def test_a_putobject_only_key_writes_and_cannot_read(
    store: Store, bucket: str, putonly: Credentials
) -> None:
    req = request()
    outcome = put_object(dest(store, bucket, putonly), req)
    stored = store.admin.get_object(Bucket=bucket, Key=req.key)
    assert stored["Body"].read() == req.body and stored["ETag"] == outcome.etag
    assert stored["Metadata"] == req.metadata
    reader = store.server.client(credentials=putonly, max_attempts=1)
    for call in (
        lambda: reader.get_object(Bucket=bucket, Key=req.key),
        lambda: reader.list_objects_v2(Bucket=bucket),
        lambda: reader.delete_object(Bucket=bucket, Key=req.key),
    ):
        with pytest.raises(ClientError) as denied:
            call()
        assert denied.value.response["Error"]["Code"] == "AccessDenied"


def test_create_only_small_put_detects_a_collision(
    store: Store, bucket: str, putonly: Credentials
) -> None:
    # Both honour If-None-Match: * on PutObject.
    destination = dest(store, bucket, putonly, create_only=True)
    key = f"compat/same-{uuid.uuid4().hex[:8]}.json"
    put_object(destination, request(key))
    err = raised(destination, request(key))
    assert isinstance(err, MessageDeliveryError) and "collision" in err.message
    retried = request()
    put_object(destination, retried)
    assert put_object(destination, retried).already_present  # its own earlier attempt


def test_credential_and_bucket_diagnoses_name_the_cause_not_aws(
    store: Store, bucket: str, putonly: Credentials
) -> None:
    wrong_secret = Credentials(putonly.access_key_id, putonly.secret_access_key[::-1])
    err = raised(dest(store, bucket, wrong_secret), request())
    assert isinstance(err, DestinationError) and err.s3_code == "SignatureDoesNotMatch"
    unknown = Credentials("AKIAS3DESTUNKNOWN000", "u" * 40)
    err2 = raised(dest(store, bucket, unknown), request())
    assert isinstance(err2, DestinationError) and err2.s3_code == "InvalidAccessKeyId"
    err3 = raised(
        dest(store, f"missing-{uuid.uuid4().hex[:8]}", store.server.admin_credentials), request()
    )
    assert isinstance(err3, DestinationError) and err3.s3_code == "NoSuchBucket"
    for e in (err, err2, err3):
        assert "AWS" not in e.diagnosis, e.diagnosis  # the endpoint is not AWS
        assert "S3 said: " not in e.diagnosis or not e.diagnosis.rstrip(")").endswith(": ")


def test_rgw_refuses_an_undeclared_storage_class_and_the_diagnosis_names_it(
    rgw_server: RgwServer,
) -> None:
    # RGW knows only the classes its zone's placement declares; GLACIER is not one here.
    creds = rgw_server.admin_credentials
    err = raised(
        S3Destination(
            bucket=rgw_server.bucket,
            region=rgw_server.region,
            access_key_id=creds.access_key_id,
            secret_access_key=creds.secret_access_key,
            endpoint_url=rgw_server.endpoint,
            storage_class="GLACIER",
        ),
        request(),
    )
    assert isinstance(err, DestinationError), err
    assert err.s3_code in ("InvalidStorageClass", "InvalidArgument")
    assert "storageClass GLACIER" in err.diagnosis and "AWS" not in err.diagnosis
