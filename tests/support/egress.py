"""The endpoint policy's allow-list for the tests' own S3 servers (SPEC §7).

s3dest refuses loopback endpoints for tenants; the test servers (moto, RGW, the canned
AWS errors server, the fault proxy) all listen on 127.0.0.1. `allow_local_s3` allows
loopback for this process and its children (the `s3dest serve` and CLI subprocesses
inherit the environment) unless the environment sets the allow-list already; a test of
the policy itself sets `S3DEST_ALLOWED_ENDPOINT_HOSTS` explicitly (see tests/security).
"""

from __future__ import annotations

import os

SETTING = "S3DEST_ALLOWED_ENDPOINT_HOSTS"  # s3dest.s3.egress.SETTING
LOCAL_S3_HOSTS = "127.0.0.0/8,::1,localhost"


def allow_local_s3() -> None:
    os.environ.setdefault(SETTING, LOCAL_S3_HOSTS)
