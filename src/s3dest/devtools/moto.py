"""A local S3 (moto) server with real IAM enforcement, for the demo, benchmarks and tests.

`start_moto_server()` launches ``python -m moto.server`` as a subprocess on a free port of
127.0.0.1 with ``INITIAL_NO_AUTH_ACTION_COUNT`` set. Moto lets that many authorised actions
through unauthenticated, then enforces SigV4 signatures and IAM policies on every later call.
The window is spent on exactly three IAM calls that create an admin user (inline policy
``*`` on ``*``) and its access key, so afterwards only real IAM keys work:

* an unknown access key id gets ``InvalidAccessKeyId``;
* a wrong secret gets ``SignatureDoesNotMatch``;
* a user without permission gets ``AccessDenied``.

How moto counts the window (moto 5.x): a process-wide counter is bumped by every request that
reaches moto's authorisation check while the counter is below the limit, whatever its
credentials and whichever service it is for. Requests to ``/moto-api/...`` do not count, so the
readiness probe uses ``GET /moto-api/``. ``GET /`` is S3 ListBuckets and *does* count.
``POST /moto-api/reset`` wipes the IAM users (the admin key included) but not the counter, which
would lock everyone out, so never reset an enforcing server.

moto and boto3 are development dependencies (``pip install -e '.[dev]'``); they are imported
lazily and a clear `MotoUnavailableError` is raised when they are missing.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

__all__ = [
    "DEFAULT_REGION",
    "Credentials",
    "MotoUnavailableError",
    "S3Server",
    "putonly_policy",
    "running_moto_server",
    "start_moto_server",
]

DEFAULT_REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account

# CreateUser + PutUserPolicy + CreateAccessKey for the admin user.
_SETUP_CALLS = 3
_INSTALL_HINT = "install the development dependencies: pip install -e '.[dev]'"

# The launcher's prelude: a watchdog thread exits the server when the process that started
# it is gone (even after a SIGKILL), so no server outlives its test session or demo; and moto,
# which lists its package directory on every request to route it, gets that list once (with
# IAM enforced that took moto from 132 to 210 PUTs/s on a 2-core machine).
_PRELUDE = """
import logging, os, sys, threading, time
def _watchdog(parent):
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)
threading.Thread(target=_watchdog, args=(int(sys.argv[1]),), daemon=True).start()
import moto.backends as _backends
_modules = tuple(_backends.list_of_moto_modules())
_backends.list_of_moto_modules = lambda: _modules
"""

# moto's own entry point (werkzeug's development server) with the per-request access log
# silenced (it costs time under load and fills the log); warnings and tracebacks still reach
# the log file.
_LAUNCHER = (
    _PRELUDE
    + """
logging.getLogger('werkzeug').setLevel(logging.WARNING)
from moto.server import main
main(sys.argv[2:])
"""
)


class MotoUnavailableError(RuntimeError):
    """moto (with its server extra) or boto3 is not installed."""


def _require(module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MotoUnavailableError(
            f"{module!r} is required for a local S3 server but is not installed; {_INSTALL_HINT}"
        ) from exc


def _check_server_deps() -> None:
    for module in ("moto", "flask", "werkzeug", "boto3"):
        if importlib.util.find_spec(module) is None:
            raise MotoUnavailableError(
                f"{module!r} is required for a local S3 server (moto[server]) but is not "
                f"installed; {_INSTALL_HINT}"
            )


@dataclass(frozen=True)
class Credentials:
    """An IAM access key pair."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


def putonly_policy(bucket: str) -> dict[str, Any]:
    """The least-privilege policy s3dest needs: PutObject on the bucket's objects, nothing else."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{bucket}/*",
            }
        ],
    }


_ADMIN_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


@dataclass
class S3Server:
    """A running moto server enforcing IAM, and an admin identity to drive it."""

    endpoint: str
    region: str
    admin_access_key_id: str
    admin_secret_access_key: str = field(repr=False)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)
    log_path: str | None = field(default=None, compare=False)
    _owns_log: bool = field(default=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _session: Any = field(default=None, repr=False, compare=False)

    @property
    def port(self) -> int:
        return int(self.endpoint.rsplit(":", 1)[1])

    @property
    def admin_credentials(self) -> Credentials:
        return Credentials(self.admin_access_key_id, self.admin_secret_access_key)

    def client(
        self,
        service: str = "s3",
        *,
        credentials: Credentials | None = None,
        region: str | None = None,
        max_attempts: int = 3,
    ) -> Any:
        """A boto3 client for this server (admin credentials unless given; S3 path-style)."""
        creds = credentials or self.admin_credentials
        botocore_config = _require("botocore.config")
        config = botocore_config.Config(
            s3={"addressing_style": "path"},
            retries={"total_max_attempts": max_attempts, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
        )
        # boto3's default session is not thread-safe; a private one guarded by a lock is.
        with self._lock:
            if self._session is None:
                self._session = _require("boto3.session").Session()
            return self._session.client(
                service,
                endpoint_url=self.endpoint,
                region_name=region or self.region,
                aws_access_key_id=creds.access_key_id,
                aws_secret_access_key=creds.secret_access_key,
                aws_session_token=creds.session_token,
                config=config,
            )

    def create_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a fresh unique name unless given) and return its name."""
        bucket = name or f"s3dest-test-{uuid.uuid4().hex[:16]}"
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if self.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        self.client().create_bucket(**kwargs)
        return bucket

    def user_with_policy(self, policy: dict[str, Any], name: str | None = None) -> Credentials:
        """Create an IAM user whose only permissions are `policy`; return its access key."""
        user = name or f"s3dest-user-{uuid.uuid4().hex[:12]}"
        iam = self.client("iam")
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName="inline", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=user)["AccessKey"]
        return Credentials(key["AccessKeyId"], key["SecretAccessKey"])

    def putonly_user(self, bucket: str) -> Credentials:
        """An IAM user allowed only ``s3:PutObject`` on ``arn:aws:s3:::BUCKET/*``."""
        return self.user_with_policy(putonly_policy(bucket))

    def log_tail(self, limit: int = 4000) -> str:
        if not self.log_path:
            return ""
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - limit))
                return fh.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the server process (if this object started it) and remove its temp log."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if self._owns_log and self.log_path:
            with contextlib.suppress(OSError):
                os.unlink(self.log_path)
            self._owns_log = False


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _probe(host: str, port: int) -> bool:
    conn = http.client.HTTPConnection(host, port, timeout=1)
    try:
        conn.request("GET", "/moto-api/")
        resp = conn.getresponse()
        resp.read()
        return resp.status == 200
    except OSError:
        return False
    finally:
        conn.close()


def _launch(
    host: str,
    port: int,
    log_path: str,
    env: dict[str, str],
    timeout: float,
) -> subprocess.Popen[bytes] | None:
    """Start moto and wait until it answers; None if it exited (e.g. port taken)."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, str(os.getpid()), "-H", host, "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # a Ctrl-C in the terminal goes to the caller only
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return None
        if _probe(host, port):
            return proc
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"moto server on {host}:{port} did not become ready within {timeout}s")


def _bootstrap_admin(endpoint: str, region: str) -> Credentials:
    """Spend the unauthenticated window on creating the admin user and its key."""
    boto3_session = _require("boto3.session")
    botocore_config = _require("botocore.config")
    # No retries: a retried call would use up the window a second time.
    config = botocore_config.Config(retries={"total_max_attempts": 1}, connect_timeout=5)
    iam = boto3_session.Session().client(
        "iam",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="bootstrap",
        aws_secret_access_key="bootstrap",
        config=config,
    )
    user = "s3dest-admin"
    iam.create_user(UserName=user)  # 1
    iam.put_user_policy(  # 2
        UserName=user, PolicyName="admin", PolicyDocument=json.dumps(_ADMIN_POLICY)
    )
    key = iam.create_access_key(UserName=user)["AccessKey"]  # 3
    return Credentials(key["AccessKeyId"], key["SecretAccessKey"])


def _verify_enforcement(server: S3Server) -> None:
    """The admin key works and an unknown key is refused (IAM is really enforced)."""
    botocore_exceptions = _require("botocore.exceptions")
    server.client(max_attempts=1).list_buckets()
    bogus = Credentials("AKIAS3DESTNOSUCHKEY0", "not-a-secret")
    try:
        server.client(credentials=bogus, max_attempts=1).list_buckets()
    except botocore_exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code == "InvalidAccessKeyId":
            return
        raise RuntimeError(f"moto refused an unknown key with {code!r}") from exc
    raise RuntimeError("moto accepted an unknown access key: IAM enforcement is not active")


def start_moto_server(
    *,
    region: str = DEFAULT_REGION,
    host: str = "127.0.0.1",
    port: int | None = None,
    log_path: str | None = None,
    startup_timeout: float = 20.0,
) -> S3Server:
    """Start a moto S3 server enforcing IAM; the caller must `S3Server.stop()` it."""
    _check_server_deps()
    owns_log = log_path is None
    if log_path is None:
        fd, log_path = tempfile.mkstemp(prefix="s3dest-moto-", suffix=".log")
        os.close(fd)
    env = dict(os.environ)
    env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(_SETUP_CALLS)
    env.pop("MOTO_PORT", None)

    proc: subprocess.Popen[bytes] | None = None
    attempts = 1 if port is not None else 3
    chosen = port
    for _ in range(attempts):
        chosen = port if port is not None else _free_port(host)
        proc = _launch(host, chosen, log_path, env, startup_timeout)
        if proc is not None:
            break
    endpoint = f"http://{host}:{chosen}"
    probe = S3Server(endpoint, region, "", "", proc, log_path, owns_log)
    if proc is None:
        tail = probe.log_tail()
        probe.stop()
        raise RuntimeError(f"moto server exited during startup; its log:\n{tail}")
    try:
        admin = _bootstrap_admin(endpoint, region)
        server = S3Server(
            endpoint,
            region,
            admin.access_key_id,
            admin.secret_access_key,
            proc,
            log_path,
            owns_log,
        )
        _verify_enforcement(server)
    except BaseException:
        probe.stop()
        raise
    return server


@contextlib.contextmanager
def running_moto_server(
    *,
    region: str = DEFAULT_REGION,
    host: str = "127.0.0.1",
    port: int | None = None,
    log_path: str | None = None,
) -> Iterator[S3Server]:
    """``with running_moto_server() as s3: ...`` — started on entry, stopped on exit."""
    server = start_moto_server(region=region, host=host, port=port, log_path=log_path)
    try:
        yield server
    finally:
        server.stop()
