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

The cluster's setup is in tests/support/rgw_config.py, the running server
(`RgwServer`) in tests/support/rgw_server.py; this module boots one.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import os
import secrets
import shutil
import socket
import string
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.support.rgw_config import (
    _BINARIES,
    _CONF,
    ADMIN_UID,
    CEPH_BIN,
    KMS_KEY_IDS,
    RgwUnavailableError,
    _made_up_key,
    rgw_available,
)
from tests.support.rgw_server import RgwServer

__all__ = ["remove_stale_clusters", "running_rgw", "start_rgw"]

BOOT_TIMEOUT = 180.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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
