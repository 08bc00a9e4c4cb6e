"""The moto S3 server for tests; the implementation lives in `s3dest.devtools.moto`."""

from __future__ import annotations

from s3dest.devtools.moto import (
    DEFAULT_REGION,
    Credentials,
    MotoUnavailableError,
    S3Server,
    putonly_policy,
    running_moto_server,
    start_moto_server,
)
from tests.support.egress import allow_local_s3

allow_local_s3()  # moto listens on 127.0.0.1: s3dest's endpoint policy must allow it

__all__ = [
    "DEFAULT_REGION",
    "Credentials",
    "MotoUnavailableError",
    "S3Server",
    "putonly_policy",
    "running_moto_server",
    "start_moto_server",
]
