"""Egress benchmark (issue 13 item 1): what the endpoint policy's proxy costs per PUT.

    .venv/bin/python -u -m bench.egress [--s3 rgw|moto] [--messages 3000] [--rounds 3]

The same 1 KiB PUTs through s3dest's writer, alternating, --rounds times each:

* direct — the endpoint is allow-listed (S3DEST_ALLOWED_ENDPOINT_HOSTS), as AWS's own S3
  endpoints are: obstore connects itself, the policy costs nothing per PUT;
* proxied — a tenant's endpoint: the connections go through the in-process egress proxy,
  which resolves the name (here an injected resolver answering 127.0.0.1, allowed by CIDR)
  and checks the address on every connection, then forwards each request (http) or the
  bytes of a tunnel (https).

CPU is this process's CPU time (time.process_time: obstore's runtime and the proxy's
threads included) per PUT; the S3 server is its own process and is not counted. RGW keeps
connections alive, as AWS does, so the proxy's per-connection check is paid once per
pooled connection and the per-PUT figure is the forwarding.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from bench._report import heading, machine_line

from s3dest.s3 import egress
from s3dest.s3.egress import EgressPolicy, Route
from s3dest.s3.egress_proxy import shared_proxy
from s3dest.s3.writer import ObjectRequest, S3Destination, put_object

BODY = b'{"data":{"pad":"' + b"x" * 1000 + b'"}}'


def _server(kind: str) -> Any:
    if kind == "rgw":
        from tests.support.rgw import start_rgw
        from tests.support.rgw_config import rgw_available

        if not rgw_available():
            sys.exit("Ceph RGW is not installed (see tests/support/rgw.py); use --s3 moto")
        return start_rgw()
    from tests.support.moto_server import start_moto_server

    return start_moto_server()


def _loop(dest: S3Destination, prefix: str, n: int) -> float:
    """CPU ms per PUT over `n` PUTs (after 50 of warm-up)."""
    for i in range(50):
        put_object(dest, ObjectRequest(f"{prefix}/warm-{i}", BODY, {}, f"w{i}"))
    started = time.process_time()
    for i in range(n):
        put_object(dest, ObjectRequest(f"{prefix}/{i:06d}", BODY, {}, f"e{i}"))
    return (time.process_time() - started) * 1000 / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--s3", choices=["rgw", "moto"], default="rgw")
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(machine_line())
    server = _server(args.s3)
    try:
        bucket = server.create_bucket()
        creds = server.putonly_user(bucket)
        port = server.port

        def dest(host: str) -> S3Destination:
            return S3Destination(
                bucket=bucket,
                region=server.region,
                access_key_id=creds.access_key_id,
                secret_access_key=creds.secret_access_key,
                # dotless: moto reads a dotted Host as a virtual-hosted bucket
                endpoint_url=f"http://{host}:{port}",
            )

        # 127.0.0.1 listed as an address: the literal goes direct, the name "s3store"
        # (resolving to it) goes through the proxy.
        egress.configure(
            EgressPolicy.from_setting("127.0.0.1/32", resolver=lambda host, p: ["127.0.0.1"])
        )
        assert egress.current().route("127.0.0.1") is Route.DIRECT
        assert egress.current().route("s3store") is Route.PROXY
        paths: dict[str, Callable[[int], float]] = {
            "direct": lambda r: _loop(dest("127.0.0.1"), f"direct{r}", args.messages),
            "proxied": lambda r: _loop(dest("s3store"), f"proxied{r}", args.messages),
        }
        heading(f"{args.messages} PUTs of 1 KiB per run against {args.s3}, {args.rounds} rounds")
        figures: dict[str, list[float]] = {name: [] for name in paths}
        for round_ in range(args.rounds):
            for name, run in paths.items():
                figures[name].append(run(round_))
                print(f"  round {round_ + 1} {name:<8} {figures[name][-1]:.3f} ms CPU per PUT")
        direct = statistics.median(figures["direct"])
        proxied = statistics.median(figures["proxied"])
        print(f"  median direct   {direct:.3f} ms CPU per PUT")
        print(f"  median proxied  {proxied:.3f} ms CPU per PUT (+{proxied - direct:.3f} ms)")
        print(f"  proxy upstream connections made: {shared_proxy().connections}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
