"""Loaded by a test's `s3dest serve` only (its PYTHONPATH names this directory): names under
`.slow-dns.test` take S3DEST_TEST_DNS_DELAY seconds to resolve (default 30), as when a
tenant's DNS server answers slowly or not at all, and then resolve to a public address.

`socket.getaddrinfo` is what glibc's resolver does for s3dest: it blocks the calling thread
(other threads run on, as here), and nothing can cancel it. No DNS server is asked: every
other name resolves as it always does.
"""

import os
import socket
import time

_SUFFIX = ".slow-dns.test"
_PUBLIC = "93.184.215.14"  # an answer only: nothing connects to it
_system_getaddrinfo = socket.getaddrinfo


def _slow_getaddrinfo(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
    if isinstance(host, str) and host.lower().rstrip(".").endswith(_SUFFIX):
        time.sleep(float(os.environ.get("S3DEST_TEST_DNS_DELAY", "30")))
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (_PUBLIC, int(port or 0)))]
    return _system_getaddrinfo(host, port, *args, **kwargs)


socket.getaddrinfo = _slow_getaddrinfo
