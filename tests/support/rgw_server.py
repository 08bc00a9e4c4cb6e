"""A running throwaway Ceph RGW (started by tests/support/rgw.py): its S3 clients and users,
its admin commands, its daemons and their end."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import string
import subprocess
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from s3dest.devtools.moto import Credentials
from tests.support.rgw_config import ADMIN_UID, CEPH_BIN, DEFAULT_REGION, _made_up_key

__all__ = ["RgwServer"]


# What `RgwServer.putobject_only_user` denies by name (RGW ignores NotAction in a Deny).
_DENIED_TO_WRITERS = [
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:AbortMultipartUpload",
    "s3:ListBucket",
    "s3:ListBucketVersions",
    "s3:ListBucketMultipartUploads",
    "s3:ListMultipartUploadParts",
    "s3:GetBucketLocation",
    "s3:PutObjectAcl",
    "s3:PutObjectTagging",
    "s3:PutBucketPolicy",
    "s3:PutLifecycleConfiguration",
]


def _die_with_parent() -> list[str]:
    """A prefix that makes the daemon get SIGKILL when the thread that started it exits
    (PR_SET_PDEATHSIG, kept across exec), without running Python code between fork and
    exec (a preexec_fn can deadlock in a process with other threads)."""
    setpriv = shutil.which("setpriv")  # util-linux
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []


@dataclass
class RgwServer:
    """A running one-node Ceph cluster with an S3 gateway and an admin S3 user."""

    base_dir: Path
    endpoint: str
    admin_access_key_id: str
    admin_secret_access_key: str = field(repr=False)
    bucket: str = ""
    region: str = DEFAULT_REGION
    boot_seconds: float = 0.0
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _session: Any = field(default=None, repr=False)
    _iam_ready: bool = field(default=False, repr=False)

    @property
    def conf(self) -> Path:
        return self.base_dir / "ceph.conf"

    @property
    def port(self) -> int:
        return int(self.endpoint.rsplit(":", 1)[1])

    @property
    def admin_credentials(self) -> Credentials:
        return Credentials(self.admin_access_key_id, self.admin_secret_access_key)

    @property
    def rgw_pid(self) -> int | None:
        proc = self.processes.get("rgw")
        return proc.pid if proc is not None else None

    # -- S3 ------------------------------------------------------------------------------------

    def client(
        self,
        service: str = "s3",
        *,
        credentials: Credentials | None = None,
        region: str | None = None,
        max_attempts: int = 3,
    ) -> Any:
        """A boto3 client (admin keys unless given; S3 path-style), like `S3Server.client`."""
        import boto3.session
        import botocore.config

        creds = credentials or self.admin_credentials
        config = botocore.config.Config(
            s3={"addressing_style": "path"},
            retries={"total_max_attempts": max_attempts, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
        )
        with self._lock:  # boto3 sessions are not thread-safe
            if self._session is None:
                self._session = boto3.session.Session()
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
        """Create a bucket owned by the admin user (a fresh name unless given)."""
        bucket = name or f"s3dest-test-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=bucket)
        return bucket

    def putonly_user(self, bucket: str) -> Credentials:
        """Keys of a new S3 subuser of the admin user with RGW's ``write`` permission.

        It can PUT (and DELETE) objects in the admin user's buckets — objects it writes are
        owned by the admin user, so `client()` reads them — and is refused GET, HEAD, List
        and HeadBucket. `bucket` is accepted for `S3Server.putonly_user`'s signature; the
        permission covers all of the admin user's buckets. (A PutObject-only IAM policy
        needs RGW's IAM API and a Deny list: see issue 14.)
        """
        del bucket
        access = "RGW" + _made_up_key(17, string.ascii_uppercase + string.digits)
        secret = _made_up_key(40, string.ascii_letters + string.digits)
        self.admin(
            "subuser",
            "create",
            f"--uid={ADMIN_UID}",
            f"--subuser={ADMIN_UID}:put-{uuid.uuid4().hex[:12]}",
            "--access=write",
            "--key-type=s3",
            f"--access-key={access}",
            f"--secret-key={secret}",
        )
        return Credentials(access, secret)

    def putobject_only_user(self, bucket: str) -> Credentials:
        """Keys of a new RGW user whose IAM user policy allows only ``s3:PutObject`` on
        ``bucket``'s objects — what s3dest's least-privilege key is on AWS.

        RGW lets a user read and delete what it wrote (it owns those objects), and ignores
        ``NotAction`` in a Deny, so the policy denies, by name, what a writer must not do:
        read, list, delete, abort multipart uploads. The bucket's policy lets the admin
        user read and list the objects this user writes (it owns them, not the admin)."""
        uid = f"put-{uuid.uuid4().hex[:12]}"
        access = "RGW" + _made_up_key(17, string.ascii_uppercase + string.digits)
        secret = _made_up_key(40, string.ascii_letters + string.digits)
        self.admin(
            "user",
            "create",
            f"--uid={uid}",
            "--display-name=s3dest put-only",
            f"--access-key={access}",
            f"--secret-key={secret}",
        )
        with self._lock:
            if not self._iam_ready:  # the admin may manage IAM user policies
                self.admin("caps", "add", f"--uid={ADMIN_UID}", "--caps=user-policy=*")
                self._iam_ready = True
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "s3:PutObject",
                    "Resource": f"arn:aws:s3:::{bucket}/*",
                },
                {"Effect": "Deny", "Action": _DENIED_TO_WRITERS, "Resource": "*"},
            ],
        }
        self.client("iam").put_user_policy(
            UserName=uid, PolicyName="putobject-only", PolicyDocument=json.dumps(policy)
        )
        admin_reads = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": [f"arn:aws:iam:::user/{ADMIN_UID}"]},
                    "Action": ["s3:*"],
                    "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                }
            ],
        }
        self.client().put_bucket_policy(Bucket=bucket, Policy=json.dumps(admin_reads))
        return Credentials(access, secret)

    # -- administration --------------------------------------------------------------------

    def _command(self, name: str, *args: str, timeout: float = 60) -> str:
        result = subprocess.run(
            [str(CEPH_BIN / name), "-c", str(self.conf), *args],
            cwd=self.base_dir,
            env=_ceph_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{name} {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}\n{self.log_tail()}"
            )
        return result.stdout

    def admin(self, *args: str) -> Any:
        """Run ``radosgw-admin ARGS``; its JSON output parsed (None when it prints nothing)."""
        out = self._command("radosgw-admin", *args)
        return json.loads(out) if out.strip() else None

    def ceph(self, *args: str) -> str:
        """Run the ``ceph`` CLI against this cluster; its stdout."""
        return self._command("ceph", *args)

    def log_tail(self, daemon: str = "client.rgw", limit: int = 4000) -> str:
        """The end of a daemon's log (``client.rgw``, ``osd.0``, ``mon.a``) and its stderr."""
        parts = []
        for path in (self.base_dir / "log" / f"{daemon}.log", self.base_dir / f"{daemon}.out"):
            with contextlib.suppress(OSError):
                parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-limit:]}")
        return "\n".join(parts)

    # -- lifecycle -------------------------------------------------------------------------

    def _spawn(self, key: str, daemon: str, *argv: str) -> None:
        out = open(self.base_dir / f"{daemon}.out", "wb")  # noqa: SIM115 - the child keeps a copy
        try:
            self.processes[key] = subprocess.Popen(
                [*_die_with_parent(), str(CEPH_BIN / argv[0]), "-c", str(self.conf), *argv[1:]],
                cwd=self.base_dir,
                env=_ceph_env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        finally:
            out.close()

    def _check_alive(self) -> None:
        for key, proc in self.processes.items():
            if proc.poll() is not None:
                daemon = {"mon": "mon.a", "osd": "osd.0", "rgw": "client.rgw"}[key]
                raise RuntimeError(
                    f"{daemon} exited with status {proc.returncode}:\n{self.log_tail(daemon)}"
                )

    def stop(self) -> None:
        """Kill every daemon (SIGKILL: nothing here is worth a clean shutdown) and delete the
        cluster's directory."""
        for key in ("rgw", "osd", "mon"):
            proc = self.processes.pop(key, None)
            if proc is not None and proc.poll() is None:
                proc.kill()
            if proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=10)
        shutil.rmtree(self.base_dir, ignore_errors=True)


def _ceph_env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("CEPH_ARGS", "CEPH_CONF", "CEPH_KEYRING"):
        env.pop(name, None)
    return env
