"""The test infrastructure itself: moto with IAM enforced, PostgreSQL, the canned error server."""

from __future__ import annotations

import hashlib
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from tests.support.aws_errors_server import AwsErrorsServer
from tests.support.moto_server import Credentials, S3Server, running_moto_server
from tests.support.postgres import PostgresCluster


def error_of(call: Callable[[], Any]) -> tuple[str, int]:
    with pytest.raises(ClientError) as info:
        call()
    response = info.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


# -- moto S3 with IAM ------------------------------------------------------------------------


def test_admin_can_do_everything(s3_server: S3Server, bucket: str) -> None:
    s3 = s3_server.client()
    s3.put_object(Bucket=bucket, Key="a/b.json", Body=b"{}")
    assert s3.get_object(Bucket=bucket, Key="a/b.json")["Body"].read() == b"{}"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["a/b.json"]
    assert s3_server.endpoint.startswith("http://127.0.0.1:")
    assert s3_server.region == "us-east-1"


def test_bucket_fixture_gives_fresh_valid_names(s3_server: S3Server, bucket: str) -> None:
    assert bucket.startswith("s3dest-test-")
    assert 3 <= len(bucket) <= 63 and bucket == bucket.lower()
    other = s3_server.create_bucket()
    assert other != bucket
    names = {b["Name"] for b in s3_server.client().list_buckets()["Buckets"]}
    assert {bucket, other} <= names


def test_putonly_user_can_only_put(s3_server: S3Server, bucket: str) -> None:
    creds = s3_server.putonly_user(bucket)
    s3 = s3_server.client(credentials=creds, max_attempts=1)

    body = b'{"data":{}}'
    put = s3.put_object(Bucket=bucket, Key="k.json", Body=body, ContentType="application/json")
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'

    assert error_of(lambda: s3.get_object(Bucket=bucket, Key="k.json")) == ("AccessDenied", 403)
    assert error_of(lambda: s3.list_objects_v2(Bucket=bucket)) == ("AccessDenied", 403)
    # HEAD responses have no body, so botocore reports the bare status code.
    assert error_of(lambda: s3.head_bucket(Bucket=bucket)) == ("403", 403)
    assert error_of(lambda: s3.get_bucket_location(Bucket=bucket)) == ("AccessDenied", 403)

    # Only this bucket: another one is off limits.
    other = s3_server.create_bucket()
    assert error_of(lambda: s3.put_object(Bucket=other, Key="k", Body=b"x")) == (
        "AccessDenied",
        403,
    )
    # The object really arrived (checked with the admin key).
    assert s3_server.client().get_object(Bucket=bucket, Key="k.json")["Body"].read() == body


def test_putonly_user_can_upload_multipart(s3_server: S3Server, bucket: str) -> None:
    s3 = s3_server.client(credentials=s3_server.putonly_user(bucket), max_attempts=1)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big.json")
    part = s3.upload_part(
        Bucket=bucket,
        Key="big.json",
        UploadId=upload["UploadId"],
        PartNumber=1,
        Body=b"x" * (5 * 1024 * 1024),
    )
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="big.json",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
    )
    head = s3_server.client().head_object(Bucket=bucket, Key="big.json")
    assert head["ContentLength"] == 5 * 1024 * 1024


def test_create_only_put_gets_412_for_existing_key(s3_server: S3Server, bucket: str) -> None:
    s3 = s3_server.client(credentials=s3_server.putonly_user(bucket), max_attempts=1)
    s3.put_object(Bucket=bucket, Key="once", Body=b"1", IfNoneMatch="*")
    assert error_of(
        lambda: s3.put_object(Bucket=bucket, Key="once", Body=b"2", IfNoneMatch="*")
    ) == (
        "PreconditionFailed",
        412,
    )


def test_unknown_access_key_is_rejected(s3_server: S3Server, bucket: str) -> None:
    s3 = s3_server.client(
        credentials=Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        max_attempts=1,
    )
    assert error_of(lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"x")) == (
        "InvalidAccessKeyId",
        403,
    )


def test_wrong_secret_is_rejected(s3_server: S3Server, bucket: str) -> None:
    real = s3_server.putonly_user(bucket)
    s3 = s3_server.client(
        credentials=Credentials(real.access_key_id, real.secret_access_key + "x"), max_attempts=1
    )
    assert error_of(lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"x")) == (
        "SignatureDoesNotMatch",
        403,
    )


def test_root_path_is_not_free_after_the_window(s3_server: S3Server) -> None:
    # An unsigned GET / is ListBuckets: it must be refused now that IAM is enforced. moto 5.2
    # answers unsigned requests (no Authorization header) with a 500 (a KeyError inside its
    # IAM check) rather than S3's 403, so accept either.
    response = httpx.get(s3_server.endpoint + "/")
    assert response.status_code in (403, 500)
    assert httpx.get(s3_server.endpoint + "/moto-api/").status_code == 200


def test_running_moto_server_outside_pytest() -> None:
    with running_moto_server() as server:
        name = server.create_bucket("s3dest-standalone")
        server.client().put_object(Bucket=name, Key="k", Body=b"x")
        process = server.process
        assert process is not None and process.poll() is None
    assert process.poll() is not None
    assert server.process is None


# -- PostgreSQL --------------------------------------------------------------------------------


def _select_one(conninfo: str) -> int:
    with psycopg.connect(conninfo, connect_timeout=10) as conn:
        row = conn.execute("SELECT 1").fetchone()
        assert row is not None
        return int(row[0])


def _conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def test_postgres_url_connects(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
    assert _select_one(_conninfo(postgres_url)) == 1


def test_pg_database_url_is_fresh_and_empty(pg_database_url: str, postgres_url: str) -> None:
    assert pg_database_url != postgres_url
    with psycopg.connect(_conninfo(pg_database_url)) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        assert tables == (0,)
        conn.execute("CREATE TABLE t (x int)")


def test_sqlalchemy_accepts_the_url(pg_database_url: str) -> None:
    sqlalchemy = pytest.importorskip("sqlalchemy")
    engine = sqlalchemy.create_engine(pg_database_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sqlalchemy.text("SELECT 41 + 1")).scalar() == 42
    finally:
        engine.dispose()


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_postgres_restart(
    postgres_cluster: PostgresCluster,
    pg_database_url: str,
    restart_postgres: Callable[..., None],
    mode: str,
) -> None:
    conninfo = _conninfo(pg_database_url)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (x int)")
        conn.execute("INSERT INTO kept VALUES (7)")
    port = postgres_cluster.port
    restart_postgres(mode=mode)
    assert postgres_cluster.port == port
    assert _select_one(conninfo) == 1
    with psycopg.connect(conninfo) as conn:
        assert conn.execute("SELECT x FROM kept").fetchall() == [(7,)]


def test_open_connections_break_on_restart_and_reconnect_works(
    postgres_url: str, restart_postgres: Callable[..., None]
) -> None:
    conninfo = _conninfo(postgres_url)
    conn = psycopg.connect(conninfo, autocommit=True)
    try:
        restart_postgres(mode="immediate")
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    finally:
        conn.close()
    assert _select_one(conninfo) == 1


# -- canned AWS errors -------------------------------------------------------------------------


_boto_session: Any = None


def _errors_client(server: AwsErrorsServer, region: str = "us-east-1", **creds: str) -> Any:
    global _boto_session
    if _boto_session is None:
        import boto3.session

        _boto_session = boto3.session.Session()
    return _boto_session.client(
        "s3",
        endpoint_url=server.endpoint,
        region_name=region,
        aws_access_key_id=creds.get("key", "AKIAIOSFODNN7EXAMPLE"),
        aws_secret_access_key="secret",
        aws_session_token=creds.get("token"),
        config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}),
    )


def _xml(body: bytes) -> dict[str, str]:
    root = ET.fromstring(body)
    assert root.tag == "Error"
    return {child.tag: child.text or "" for child in root}


def test_permanent_redirect(aws_errors_server: AwsErrorsServer) -> None:
    aws_errors_server.respond_with("PermanentRedirect", region="eu-west-1")
    response = httpx.put(aws_errors_server.endpoint + "/my-bucket/a.json", content=b"{}")
    assert response.status_code == 301
    assert response.headers["x-amz-bucket-region"] == "eu-west-1"
    assert response.headers["content-type"] == "application/xml"
    assert response.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>')
    error = _xml(response.content)
    assert list(error) == ["Code", "Message", "Endpoint", "Bucket", "RequestId", "HostId"]
    assert error["Code"] == "PermanentRedirect"
    assert error["Message"] == (
        "The bucket you are attempting to access must be addressed using the specified "
        "endpoint. Please send all future requests to this endpoint."
    )
    assert error["Endpoint"] == "my-bucket.s3.eu-west-1.amazonaws.com"
    assert error["Bucket"] == "my-bucket"
    assert error["RequestId"] == response.headers["x-amz-request-id"]
    assert error["HostId"] == response.headers["x-amz-id-2"]

    # boto3 sees it the way it sees the real thing.
    s3 = _errors_client(aws_errors_server)
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket="my-bucket", Key="a.json", Body=b"{}")
    assert info.value.response["Error"]["Code"] == "PermanentRedirect"
    assert info.value.response["Error"]["Endpoint"] == "my-bucket.s3.eu-west-1.amazonaws.com"
    assert info.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == (
        "eu-west-1"
    )


def test_authorization_header_malformed(aws_errors_server: AwsErrorsServer) -> None:
    aws_errors_server.respond_with("AuthorizationHeaderMalformed", region="eu-west-1")
    auth = (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20250101/ap-south-1/s3/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=00"
    )
    response = httpx.put(
        aws_errors_server.endpoint + "/b/k", content=b"x", headers={"Authorization": auth}
    )
    assert response.status_code == 400
    assert response.headers["x-amz-bucket-region"] == "eu-west-1"
    assert response.headers["content-type"] == "application/xml"
    error = _xml(response.content)
    assert list(error) == ["Code", "Message", "Region", "RequestId", "HostId"]
    assert error["Code"] == "AuthorizationHeaderMalformed"
    # The message quotes the region the request was signed for.
    assert error["Message"] == (
        "The authorization header is malformed; the region 'ap-south-1' is wrong; "
        "expecting 'eu-west-1'"
    )
    assert error["Region"] == "eu-west-1"


def test_boto3_follows_region_errors_once(aws_errors_server: AwsErrorsServer) -> None:
    """botocore's S3 region redirector re-signs for the region S3 names and retries once.

    So the error a boto3 caller finally sees comes from the *second* request, already signed
    for the bucket's region; the first request carried the caller's region.
    """
    aws_errors_server.respond_with("AuthorizationHeaderMalformed", region="eu-west-1")
    s3 = _errors_client(aws_errors_server, region="us-east-1")
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket="b", Key="k", Body=b"x")
    error = info.value.response["Error"]
    assert error["Code"] == "AuthorizationHeaderMalformed"
    assert error["Region"] == "eu-west-1"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    signed = [r.headers["authorization"].split("/")[2] for r in aws_errors_server.requests]
    assert signed == ["us-east-1", "eu-west-1"]
    assert error["Message"] == (
        "The authorization header is malformed; the region 'eu-west-1' is wrong; "
        "expecting 'eu-west-1'"
    )


@pytest.mark.parametrize(
    ("code", "status", "message"),
    [
        ("AccessDenied", 403, "Access Denied"),
        ("ExpiredToken", 400, "The provided token has expired."),
        ("SlowDown", 503, "Please reduce your request rate."),
        ("InternalError", 500, "We encountered an internal error. Please try again."),
        ("IllegalLocationConstraintException", 400, None),
        ("InvalidAccessKeyId", 403, None),
        ("SignatureDoesNotMatch", 403, None),
        ("NoSuchBucket", 404, "The specified bucket does not exist"),
    ],
)
def test_canned_errors_reach_boto3(
    aws_errors_server: AwsErrorsServer, code: str, status: int, message: str | None
) -> None:
    aws_errors_server.respond_with(code)
    s3 = _errors_client(aws_errors_server, token="session-token")
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket="b", Key="k", Body=b"x" * 100_000)
    assert info.value.response["Error"]["Code"] == code
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    if message is not None:
        assert info.value.response["Error"]["Message"] == message
    if code == "ExpiredToken":
        assert info.value.response["Error"]["Token-0"] == "session-token"


def test_bodies_are_consumed_and_requests_recorded(aws_errors_server: AwsErrorsServer) -> None:
    aws_errors_server.respond_with("AccessDenied")
    s3 = _errors_client(aws_errors_server)
    body = b"y" * 3_000_000  # big enough for botocore to send Expect: 100-continue
    for _ in range(3):  # the same keep-alive connection keeps working after each error
        with pytest.raises(ClientError):
            s3.put_object(Bucket="bkt", Key="dir/obj.json", Body=body)
    requests = aws_errors_server.requests
    assert len(requests) == 3
    first = requests[0]
    assert first.method == "PUT"
    assert first.path == "/bkt/dir/obj.json"
    assert first.bucket == "bkt"
    assert first.body == body
    assert first.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=")
    assert first.response_code == "AccessDenied"


def test_chunked_request_body_is_consumed(aws_errors_server: AwsErrorsServer) -> None:
    aws_errors_server.respond_with("SlowDown")

    def chunks() -> Any:
        yield b"abc"
        yield b"defg"

    response = httpx.put(aws_errors_server.endpoint + "/b/k", content=chunks())
    assert response.status_code == 503
    assert aws_errors_server.requests[0].body == b"abcdefg"


def test_one_shot_responses_then_default(aws_errors_server: AwsErrorsServer) -> None:
    aws_errors_server.respond_with("OK")
    aws_errors_server.respond_with("SlowDown", times=2)
    statuses = [httpx.put(aws_errors_server.endpoint + "/b/k", content=b"x").status_code]
    statuses += [httpx.put(aws_errors_server.endpoint + "/b/k", content=b"x").status_code]
    ok = httpx.put(aws_errors_server.endpoint + "/b/k", content=b"x")
    assert statuses == [503, 503]
    assert ok.status_code == 200
    assert ok.headers["etag"] == f'"{hashlib.md5(b"x").hexdigest()}"'


def test_head_gets_status_without_body(aws_errors_server: AwsErrorsServer) -> None:
    aws_errors_server.respond_with("PermanentRedirect", region="ap-southeast-2")
    response = httpx.head(aws_errors_server.endpoint + "/b")
    assert response.status_code == 301
    assert response.headers["x-amz-bucket-region"] == "ap-southeast-2"
    assert response.content == b""


def test_errors_server_handles_concurrent_requests(aws_errors_server: AwsErrorsServer) -> None:
    aws_errors_server.respond_with("InternalError")
    results: list[int] = []

    with httpx.Client() as client:

        def hit() -> None:
            results.append(
                client.put(aws_errors_server.endpoint + "/b/k", content=b"z").status_code
            )

        threads = [threading.Thread(target=hit) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert results == [500] * 20
    assert len(aws_errors_server.requests) == 20


def test_unknown_canned_code_is_refused(aws_errors_server: AwsErrorsServer) -> None:
    with pytest.raises(ValueError, match="unknown canned response"):
        aws_errors_server.respond_with("NoSuchThing")
