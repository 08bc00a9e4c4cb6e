"""A throwaway Ceph RGW (S3) for tests and benchmarks: one monitor, one OSD, one gateway.

    from tests.support.rgw import running_rgw

    with running_rgw() as rgw:
        rgw.endpoint                  # http://127.0.0.1:PORT (beast frontend, keep-alive)
        rgw.bucket                    # a bucket created at start, owned by the admin user
        rgw.client()                  # boto3 client with the admin user's keys (path style)
        rgw.create_bucket()           # a fresh bucket
        rgw.putonly_user(bucket)      # Credentials of a write-only subuser (see there)

Unlike moto, RGW keeps HTTP connections alive, as real S3 does, so client CPU per PUT is
not inflated by a TCP connect and teardown per request.

Ceph 16 has no standalone store for RGW, so a minimal cluster is built in a temp dir:
``ceph-mon`` and one ``ceph-osd`` (BlueStore on a 10 GiB sparse file) on free ports of
127.0.0.1, ``auth none`` between the daemons (the gateway still checks every S3 signature),
pools of size 1, then ``radosgw`` and an S3 user with made-up keys (``radosgw-admin``).
``ms mon client mode = crc secure`` is needed or radosgw hangs at start. First boot takes
about 11 s on an idle 2-core machine (most of it radosgw creating its pools);
`RgwServer.stop` kills every daemon and deletes the directory. The daemons get SIGKILL if
the thread that started them dies (``setpriv --pdeathsig``), so none outlives a killed
session.

Runs as root (CI) or as any user: every path the daemons touch is in the temp dir, and as
root the daemons simply stay root (Ceph, unlike initdb, does not refuse it).

Binaries: the Debian packages ``radosgw ceph-mon ceph-osd ceph-common`` (`.ci/run`
installs them); ``$S3DEST_CEPH_BIN`` points elsewhere.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import secrets
import shutil
import socket
import string
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from s3dest.devtools.moto import Credentials
from tests.support.egress import allow_local_s3

allow_local_s3()  # RGW listens on 127.0.0.1: s3dest's endpoint policy must allow it

__all__ = [
    "CEPH_BIN",
    "KMS_KEY_IDS",
    "RgwServer",
    "RgwUnavailableError",
    "remove_stale_clusters",
    "rgw_available",
    "running_rgw",
    "start_rgw",
]

CEPH_BIN = Path(os.environ.get("S3DEST_CEPH_BIN", "/usr/bin"))
_BINARIES = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "ceph", "monmaptool")
DEFAULT_REGION = "us-east-1"  # RGW accepts any region in the signature
ADMIN_UID = "s3dest-admin"
#: SSE-KMS key ids the gateway knows (``rgw crypt s3 kms backend = testing``).
KMS_KEY_IDS = ("testkey-1", "testkey-2")
BOOT_TIMEOUT = 180.0

# {dir} and the ports are filled in; `$name` is Ceph's own metavariable (mon.a, osd.0, ...).
_CONF = """\
[global]
fsid = {fsid}
mon host = v2:127.0.0.1:{mon_port}
public addr = 127.0.0.1
ms bind msgr1 = false
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc secure
keyring = /dev/null
run dir = {dir}/run
admin socket = {dir}/run/$name.asok
pid file = {dir}/run/$name.pid
log file = {dir}/log/$name.log
crash dir = {dir}/crash
log to stderr = false
err to stderr = true
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon data avail warn = 2
mon data avail crit = 1
debug rgw = {debug_rgw}
debug ms = 0
# One monitor proposes at once instead of batching for a second: radosgw's start-up (pool
# after pool, each an osdmap change) went from ~20 s to ~10 s.
paxos propose interval = 0.1
paxos min wait = 0.01

[mon.a]
mon data = {dir}/mon

[osd.0]
osd data = {dir}/osd
osd objectstore = bluestore
bluestore block path = {dir}/osd-block.img
bluestore block create = true
bluestore block size = {block_size}
osd memory target = 1073741824
bluestore fsck on mkfs = false
bluestore fsck on mount = false

[client.rgw]
rgw data = {dir}/rgw
rgw frontends = beast endpoint=127.0.0.1:{rgw_port}
rgw enable ops log = false
rgw enable usage log = false
# Multipart tests use 64 KiB parts (S3's minimum, 5 MiB, would make them move megabytes).
rgw multipart min part size = 65536
# SSE-KMS without a key server: RGW's "testing" backend takes its keys from this line
# (name=base64 of 32 bytes, made up per cluster), and HTTP is allowed for encrypted PUTs.
rgw crypt s3 kms backend = testing
rgw crypt s3 kms encryption keys = {kms_keys}
rgw crypt require ssl = false
"""


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


class RgwUnavailableError(RuntimeError):
    """The Ceph binaries (radosgw, ceph-mon, ceph-osd, ceph-common) are not installed."""


def rgw_available() -> bool:
    return all((CEPH_BIN / name).is_file() for name in _BINARIES)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> list[str]:
    """A prefix that makes the daemon get SIGKILL when the thread that started it exits
    (PR_SET_PDEATHSIG, kept across exec), without running Python code between fork and
    exec (a preexec_fn can deadlock in a process with other threads)."""
    setpriv = shutil.which("setpriv")  # util-linux
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_clusters() -> list[Path]:
    """Delete the directories of clusters whose daemons are all gone (their session was
    killed before `stop`: the daemons died with it, the files stayed). A cluster counts as
    gone when its monitor has written a pid file and no pid file names a live process."""
    removed = []
    for base in Path(tempfile.gettempdir()).glob("s3dest-rgw-*"):
        run = base / "run"
        try:
            pid_files = list(run.glob("*.pid"))
            if not (run / "mon.a.pid").exists():
                continue  # booting (or not a cluster of ours)
            pids = [int(f.read_text().strip() or 0) for f in pid_files]
        except (OSError, ValueError):
            continue
        if not any(pid > 0 and _alive(pid) for pid in pids):
            shutil.rmtree(base, ignore_errors=True)
            removed.append(base)
    return removed


def _made_up_key(length: int, alphabet: str) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


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


def _wait(what: str, server: RgwServer, ready: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        server._check_alive()
        if ready():
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {timeout:.0f} s:\n{server.log_tail()}")
        time.sleep(0.2)


def _http_ok(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/")
        return conn.getresponse().status == 200  # anonymous ListBuckets: an empty list
    except OSError:
        return False
    finally:
        conn.close()


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start_rgw(*, debug: bool = False) -> RgwServer:
    """Build and start a throwaway cluster + gateway; the caller must `RgwServer.stop()` it.

    `debug` keeps RGW's per-request log lines (``debug rgw = 1``, the package default) in
    ``log/client.rgw.log``; otherwise only errors are logged, which is what benchmarks want.
    """
    if not rgw_available():
        missing = [name for name in _BINARIES if not (CEPH_BIN / name).is_file()]
        raise RgwUnavailableError(
            f"Ceph binaries not found in {CEPH_BIN}: {', '.join(missing)} "
            "(apt-get install radosgw ceph-mon ceph-osd ceph-common, or set S3DEST_CEPH_BIN)"
        )
    started = time.monotonic()
    remove_stale_clusters()
    base_dir = Path(tempfile.mkdtemp(prefix="s3dest-rgw-"))
    server: RgwServer | None = None
    try:
        for sub in ("run", "log", "crash", "mon", "osd", "rgw"):
            (base_dir / sub).mkdir()
        fsid = str(uuid.uuid4())
        mon_port, rgw_port = _free_port(), _free_port()
        while rgw_port == mon_port:
            rgw_port = _free_port()
        server = RgwServer(
            base_dir=base_dir,
            endpoint=f"http://127.0.0.1:{rgw_port}",
            admin_access_key_id="RGW" + _made_up_key(17, string.ascii_uppercase + string.digits),
            admin_secret_access_key=_made_up_key(40, string.ascii_letters + string.digits),
        )
        server.conf.write_text(
            _CONF.format(
                fsid=fsid,
                mon_port=mon_port,
                rgw_port=rgw_port,
                dir=base_dir,
                block_size=10 * 2**30,  # sparse: only what is written takes disk space
                debug_rgw=1 if debug else 0,
                kms_keys=" ".join(
                    f"{key_id}={base64.b64encode(secrets.token_bytes(32)).decode()}"
                    for key_id in KMS_KEY_IDS
                ),
            )
        )
        # Monitor: a monmap with one monitor, its store, then the daemon (foreground).
        subprocess.run(
            [
                str(CEPH_BIN / "monmaptool"),
                "--create",
                "--fsid",
                fsid,
                "--addv",
                "a",
                f"[v2:127.0.0.1:{mon_port}]",
                str(base_dir / "monmap"),
            ],
            capture_output=True,
            check=True,
            timeout=30,
        )
        server._command("ceph-mon", "--mkfs", "-i", "a", "--monmap", str(base_dir / "monmap"))
        server._spawn("mon", "mon.a", "ceph-mon", "-f", "-i", "a")
        _wait("ceph-mon", server, lambda: _port_open(mon_port), 30)
        # OSD 0: registered with the monitor, BlueStore created on the sparse file, started.
        osd_uuid = str(uuid.uuid4())
        osd_id = server.ceph("osd", "new", osd_uuid).strip()
        if osd_id != "0":
            raise RuntimeError(f"expected OSD id 0, the monitor gave {osd_id!r}")
        server._command("ceph-osd", "-i", "0", "--mkfs", "--osd-uuid", osd_uuid, timeout=120)
        server._spawn("osd", "osd.0", "ceph-osd", "-f", "-i", "0")
        # The gateway waits for the OSD by itself while it creates its pools.
        server._spawn("rgw", "client.rgw", "radosgw", "-f", "-n", "client.rgw")
        _wait("radosgw", server, lambda: _http_ok(rgw_port), BOOT_TIMEOUT)
        server.admin(
            "user",
            "create",
            f"--uid={ADMIN_UID}",
            "--display-name=s3dest test admin",
            f"--access-key={server.admin_access_key_id}",
            f"--secret-key={server.admin_secret_access_key}",
        )
        server.bucket = server.create_bucket("s3dest-rgw")
        server.boot_seconds = time.monotonic() - started
        return server
    except BaseException:
        if server is not None:
            server.stop()
        shutil.rmtree(base_dir, ignore_errors=True)
        raise


@contextlib.contextmanager
def running_rgw(*, debug: bool = False) -> Iterator[RgwServer]:
    """``with running_rgw() as rgw: ...`` — a cluster that is killed and deleted on exit."""
    server = start_rgw(debug=debug)
    try:
        yield server
    finally:
        server.stop()
