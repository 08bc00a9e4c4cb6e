"""One `s3dest serve` per database for a whole test module, instead of one per test.

Starting a server costs about 2 s of CPU (imports, migrations, workers); a module of twenty
API tests paid it twenty times. A module that only talks to the server over HTTP and the CLI,
with a project of its own per test, shares one instead:

    from tests.support.shared_server import shared_server_fixtures

    s3dest_env, s3dest_server = shared_server_fixtures()

The two fixtures replace conftest's function-scoped ones of the same names for that module
(so `project` and every other fixture that asks for `s3dest_env` gets the shared one). Each
test still has its own project (`project` and `create_project` make one with a unique name:
names are unique per server) and its own bucket. What the tests then share is exactly what
tenants share, one server, so each module also shows that one project's work does not
disturb another's. Modules that restart or kill the server, change its settings, read its
whole log or count server-wide figures keep the per-test fixtures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from tests.support.s3dest_server import S3destEnv, S3destProcess, serve


def shared_server_fixtures(
    databases: Sequence[str] = ("sqlite", "postgres"),
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """Module-scoped `s3dest_env` (one per database in `databases`) and `s3dest_server`."""

    @pytest.fixture(scope="module", params=list(databases))
    def s3dest_env(
        request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
    ) -> S3destEnv:
        url = (
            None if request.param == "sqlite" else request.getfixturevalue("pg_module_database_url")
        )
        base = tmp_path_factory.mktemp(f"shared-{request.param}")
        return S3destEnv(
            data_dir=base / "data",
            database_url=url,
            extra={"S3DEST_SECRET_KEY": ""},
            unique_project_names=True,
        )

    @pytest.fixture(scope="module")
    def s3dest_server(s3dest_env: S3destEnv) -> Iterator[S3destProcess]:
        process = serve(s3dest_env, s3dest_env.data_dir.parent)
        try:
            yield process
        finally:
            process.kill()

    return s3dest_env, s3dest_server
