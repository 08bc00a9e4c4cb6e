"""Run the real `s3dest` command as a subprocess (serve / worker), as a user would.

Tests use it to go through HTTP, kill -9 it, restart it, and run several processes
against one PostgreSQL database.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import httpx

from s3dest.client import Client
from s3dest.runtime import open_engine
from s3dest.settings import Settings
from s3dest.store.projects import create_project
from tests.support import zygote
from tests.support.egress import LOCAL_S3_HOSTS, allow_local_s3

allow_local_s3()

S3DEST = [sys.executable, "-m", "s3dest.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class S3destEnv:
    """Where an s3dest installation keeps its state: a data dir and maybe a database URL."""

    data_dir: Path
    database_url: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    #: several tests share this installation (tests/support/shared_server.py): each project
    #: name gets a suffix, since names are unique per server
    unique_project_names: bool = False
    #: run commands as `python -m s3dest.cli …` instead of forking them from a process that
    #: has imported s3dest (tests/support/zygote.py): for tests that measure the process
    exec_process: bool = False

    def forked(self) -> bool:
        # PYTHONPATH in `extra`: another checkout's code (bench.pipeline --baseline), which
        # only its own command runs.
        return not self.exec_process and "PYTHONPATH" not in self.extra and zygote.enabled()

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["S3DEST_DATA_DIR"] = str(self.data_dir)
        env.pop("S3DEST_DATABASE_URL", None)
        if self.database_url:
            env["S3DEST_DATABASE_URL"] = self.database_url
        env.setdefault("S3DEST_LOG_LEVEL", "INFO")
        # the tests' S3 servers are on loopback; tests of the policy override it in `extra`
        env.setdefault("S3DEST_ALLOWED_ENDPOINT_HOSTS", LOCAL_S3_HOSTS)
        env.update(self.extra)
        return env

    def cli(
        self, *args: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        if self.forked():
            result = zygote.run_captured(list(args), self.env(), timeout)
        else:
            result = subprocess.run(
                [*S3DEST, *args], env=self.env(), capture_output=True, text=True, timeout=timeout
            )
        if check and result.returncode != 0:
            raise AssertionError(
                f"s3dest {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def settings(self) -> Settings:
        """The settings an `s3dest` command started with `env()` reads."""
        with mock.patch.dict(os.environ, self.env(), clear=True):
            return Settings.from_env()

    def create_project(self, name: str = "test") -> tuple[str, str]:
        """(id, API key) of a new project, made in this process by what `s3dest projects
        create` calls (the same migrations, store and checks). The command itself is run by
        test_cli_destinations and test_demo; starting it for every test's project cost
        ~1.2 s of CPU each, about 300 times per suite."""
        if self.unique_project_names:
            name = f"{name}-{uuid.uuid4().hex[:8]}"
        if "PYTHONPATH" in self.extra:
            # Another checkout's code (bench.pipeline --baseline): only its own command
            # knows its schema; this checkout's migrations would move the database past it.
            out = self.cli("projects", "create", name).stdout
            project_id = re.search(r"project id:\s+(\S+)", out)
            api_key = re.search(r"api key:\s+(\S+)", out)
            assert project_id and api_key, out
            return project_id.group(1), api_key.group(1)
        engine = open_engine(self.settings())
        try:
            created = create_project(engine, name)
        finally:
            engine.dispose()
        return created.project.id, created.api_key


@dataclass
class S3destProcess:
    """One running `s3dest serve` (or `s3dest worker`) process."""

    environment: S3destEnv
    args: list[str]
    port: int | None
    log_path: Path
    proc: subprocess.Popen[bytes] | zygote.ForkedProcess | None = None

    @property
    def url(self) -> str:
        assert self.port is not None
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> S3destProcess:
        log = self.log_path.open("ab")
        if self.environment.forked():
            self.proc = zygote.ForkedProcess(self.args, self.environment.env(), log, log)
        else:
            self.proc = subprocess.Popen(
                [*S3DEST, *self.args], env=self.environment.env(), stdout=log, stderr=log
            )
        log.close()
        if self.port is None:
            time.sleep(0.5)
            return self
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"s3dest exited ({self.proc.returncode}):\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        # A server that missed its deadline must not outlive the test that gave up on it:
        # left running, every failed start keeps polling its queue and loads the machine.
        self.kill()
        raise RuntimeError(f"s3dest did not become healthy:\n{self.log()}")

    def client(self, api_key: str) -> Client:
        return Client(self.url, api_key)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """kill -9: no cleanup, no goodbye."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait: the graceful path."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def restart(self) -> S3destProcess:
        self.kill()
        return self.start()


def serve(environment: S3destEnv, log_dir: Path, *extra: str) -> S3destProcess:
    port = free_port()
    args = ["serve", "--port", str(port), *extra]
    return S3destProcess(environment, args, port, log_dir / f"serve-{port}.log").start()


def worker(environment: S3destEnv, log_dir: Path, name: str = "worker") -> S3destProcess:
    return S3destProcess(environment, ["worker"], None, log_dir / f"{name}.log").start()
