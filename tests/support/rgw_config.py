"""The throwaway Ceph RGW's setup (tests/support/rgw.py): where the Ceph binaries are, the
cluster's ceph.conf, the admin user, the SSE-KMS key ids and the made-up S3 keys.

Importing it allows loopback S3 endpoints for this process and its children
(tests/support/egress.py): every module of the RGW imports this one.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from tests.support.egress import allow_local_s3

allow_local_s3()  # RGW listens on 127.0.0.1: s3dest's endpoint policy must allow it

__all__ = [
    "ADMIN_UID",
    "CEPH_BIN",
    "DEFAULT_REGION",
    "KMS_KEY_IDS",
    "RgwUnavailableError",
    "rgw_available",
]

CEPH_BIN = Path(os.environ.get("S3DEST_CEPH_BIN", "/usr/bin"))
_BINARIES = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "ceph", "monmaptool")
DEFAULT_REGION = "us-east-1"  # RGW accepts any region in the signature
ADMIN_UID = "s3dest-admin"
#: SSE-KMS key ids the gateway knows (``rgw crypt s3 kms backend = testing``).
KMS_KEY_IDS = ("testkey-1", "testkey-2")

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


class RgwUnavailableError(RuntimeError):
    """The Ceph binaries (radosgw, ceph-mon, ceph-osd, ceph-common) are not installed."""


def rgw_available() -> bool:
    return all((CEPH_BIN / name).is_file() for name in _BINARIES)


def _made_up_key(length: int, alphabet: str) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))
