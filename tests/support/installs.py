"""A running `s3dest serve` with a given endpoint allow-list, its project's API client and
its environment (to restart it with another allow-list): for tests/security.

    with installed(tmp_path, database_url, allowed="127.0.0.1") as inst:
        inst.api.post("/v1/destinations", json=...)
        inst.restart(allowed="")        # the operator narrows the policy
        tenant = inst.new_project()     # the same server, another project
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.egress import SETTING
from tests.support.s3dest_server import S3destEnv, S3destProcess, serve


@dataclass
class Installation:
    env: S3destEnv
    server: S3destProcess
    api: httpx.Client

    def restart(self, *, allowed: str) -> None:
        self.server.environment.extra[SETTING] = allowed
        self.server.restart()

    def close(self) -> None:
        self.api.close()
        self.server.kill()

    def new_project(self) -> Installation:
        """The same server, seen by a new project of its own (for tests that share one
        server per module: see tests/support/shared_server.py). Close its `api` only."""
        _, api_key = self.env.create_project(f"security-{uuid.uuid4().hex[:8]}")
        return Installation(self.env, self.server, _client(self.server, api_key))


def install(tmp: Path, database_url: str | None, *, allowed: str) -> Installation:
    env = S3destEnv(
        data_dir=tmp / "data",
        database_url=database_url,
        extra={"S3DEST_SECRET_KEY": "", SETTING: allowed},
    )
    server = serve(env, tmp)
    _, api_key = env.create_project("security")
    return Installation(env, server, _client(server, api_key))


def _client(server: S3destProcess, api_key: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {api_key}"}, timeout=60
    )


@contextlib.contextmanager
def installed(tmp: Path, database_url: str | None, *, allowed: str) -> Iterator[Installation]:
    installation = install(tmp, database_url, allowed=allowed)
    try:
        yield installation
    finally:
        installation.close()
