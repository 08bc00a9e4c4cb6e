"""Session-wide fixtures backed by real local services (see tests/support).

S3 (moto, IAM enforced):
    s3_server            session   S3Server: endpoint, region, admin keys, client(),
                                   create_bucket(), putonly_user(bucket) -> Credentials
    bucket               function  a fresh bucket name on s3_server
PostgreSQL (throwaway cluster; skipped when not installed, an error when $CI is set):
    postgres_cluster     session   PostgresCluster: url(db), conninfo(db), restart(mode),
                                   create_database(), drop_database(name)
    postgres_url         session   SQLAlchemy URL of a database created for the session
    pg_module_database_url  module    URL of a fresh empty database for the test module
    pg_database_url      function  URL of a fresh empty database for the test (dropped after)
    restart_postgres     function  the cluster's restart(mode="fast", downtime=0.0)
Ceph RGW (a second, real S3 that keeps connections alive; skipped when Ceph is not installed,
an error when $CI is set; ~11 s to boot, so one per session):
    rgw_server           session   RgwServer: endpoint, region, admin keys, bucket, client(),
                                   create_bucket(), putonly_user(bucket), admin(*args)
Canned AWS errors:
    aws_errors_server    function  AwsErrorsServer: endpoint, respond_with(code, ...), requests

Servers start lazily, on first use, and stop at the end of the session.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.aws_errors_server import AwsErrorsServer
from tests.support.egress import allow_local_s3
from tests.support.moto_server import S3Server, start_moto_server
from tests.support.postgres import PostgresCluster, postgres_available, start_postgres
from tests.support.requirements import require
from tests.support.rgw import start_rgw
from tests.support.rgw_config import rgw_available
from tests.support.rgw_server import RgwServer
from tests.support.s3dest_server import S3destEnv, S3destProcess, serve

# Every local S3 server of the tests listens on loopback, which s3dest's endpoint policy
# refuses for tenants (SPEC §7): allow it for this process (in-process writers) and the
# `s3dest` subprocesses, which inherit it. tests/security sets its own allow-lists.
allow_local_s3()

# Multipart tests use 64 KiB parts (S3DEST_MULTIPART_PART_BYTES): the moto server, like the
# RGW of tests/support/rgw.py, accepts them (S3's 5 MiB minimum would make each such test
# move megabytes). Read by moto's server process at start.
TEST_PART_BYTES = 64 * 1024
os.environ.setdefault("S3_UPLOAD_PART_MIN_SIZE", str(TEST_PART_BYTES))
#: s3dest's settings for them: bodies above one part go up as multipart uploads.
SMALL_PARTS_ENV = {
    "S3DEST_INLINE_BODY_BYTES": str(TEST_PART_BYTES),
    "S3DEST_MULTIPART_PART_BYTES": str(TEST_PART_BYTES),
}

_POSTGRES_FIXTURES = {
    "postgres_cluster",
    "postgres_url",
    "pg_database_url",
    "pg_module_database_url",
    "restart_postgres",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if _POSTGRES_FIXTURES & fixtures:
            item.add_marker(pytest.mark.postgres)
        if "rgw_server" in fixtures:
            item.add_marker(pytest.mark.rgw)


# -- S3 (moto) ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = start_moto_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    return s3_server.create_bucket()


# -- PostgreSQL --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    # Skipped only on a developer machine without PostgreSQL; CI (and .ci/run) installs it,
    # and there its absence is a failure.
    require(postgres_available(), "PostgreSQL 15 server binaries are not installed (see .ci/run)")
    cluster = start_postgres()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    return postgres_cluster.create_database("s3dest_session")


def _fresh_database(cluster: PostgresCluster) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:16]}"
    url = cluster.create_database(name)
    yield url
    if cluster.running:
        cluster.drop_database(name)


@pytest.fixture(scope="module")
def pg_module_database_url(postgres_cluster: PostgresCluster) -> Iterator[str]:
    yield from _fresh_database(postgres_cluster)


@pytest.fixture
def pg_database_url(postgres_cluster: PostgresCluster) -> Iterator[str]:
    yield from _fresh_database(postgres_cluster)


@pytest.fixture
def restart_postgres(postgres_cluster: PostgresCluster) -> Iterator[Callable[..., None]]:
    yield postgres_cluster.restart
    if not postgres_cluster.running:  # a failed restart must not take later tests down
        postgres_cluster.start()


# -- Ceph RGW ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def rgw_server() -> Iterator[RgwServer]:
    require(
        rgw_available(),
        "Ceph RGW is not installed: radosgw ceph-mon ceph-osd ceph-common (see .ci/run)",
    )
    server = start_rgw()
    try:
        yield server
    finally:
        server.stop()


# -- canned AWS errors -------------------------------------------------------------------------


@pytest.fixture
def aws_errors_server() -> Iterator[AwsErrorsServer]:
    server = AwsErrorsServer()
    try:
        yield server
    finally:
        server.stop()


# -- s3dest itself, as a user runs it ----------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str | None:
    """Run the test on SQLite (None: the embedded default) and on PostgreSQL."""
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("pg_database_url")
    return url


@pytest.fixture
def s3dest_env(tmp_path: Path, database_url: str | None) -> S3destEnv:
    return S3destEnv(
        data_dir=tmp_path / "data", database_url=database_url, extra={"S3DEST_SECRET_KEY": ""}
    )


@pytest.fixture
def s3dest_server(s3dest_env: S3destEnv, tmp_path: Path) -> Iterator[S3destProcess]:
    """`s3dest serve` on a free port (API + workers), stopped after the test."""
    process = serve(s3dest_env, tmp_path)
    try:
        yield process
    finally:
        process.kill()


@pytest.fixture
def project(s3dest_env: S3destEnv) -> tuple[str, str]:
    """(project id, API key) of a fresh project."""
    return s3dest_env.create_project("test")
