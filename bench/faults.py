"""Fault injection at the issue's size: 5,000 messages through 20 % injected S3 faults.

    python -m bench.faults [--messages 5000] [--rate 0.2] [--after 0.5] [--db sqlite|postgres|both]

Starts a moto server (IAM enforced), the fault-injecting proxy of tests/support/fault_proxy.py
in front of it (resets, stalls past the client timeout, 500 InternalError, 503 SlowDown,
409 ConditionalRequestConflict, truncated answers; `--after` of them after S3 stored the
object) and `s3dest serve` with its destination's endpointUrl on the proxy. Sends the
messages, waits until none is in flight, then checks every message (delivered, its object
holding exactly its body) and prints the figures: faults injected by kind and stage,
retries, duplicate PUTs, delivered, time. Exit status 1 when a promise was broken.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.support.fault_proxy import FaultProxy
from tests.support.fault_scenario import FaultScenario
from tests.support.s3dest_server import S3destEnv, serve

from s3dest.devtools.moto import start_moto_server

CLIENT_TIMEOUT = 1.0


@contextlib.contextmanager
def database(kind: str) -> Iterator[str | None]:
    if kind == "sqlite":
        yield None
        return
    from tests.support.postgres import running_postgres

    with running_postgres() as pg:
        yield pg.create_database()


def run(kind: str, messages: int, rate: float, after: float, seed: int, timeout: float) -> bool:
    s3 = start_moto_server()
    proxy = FaultProxy(
        s3.endpoint,
        rates=FaultProxy.evenly(rate),
        after_fraction=after,
        stall_seconds=CLIENT_TIMEOUT + 0.5,
        client_timeout=CLIENT_TIMEOUT,
        seed=seed,
    ).start()
    try:
        bucket = s3.create_bucket()
        with tempfile.TemporaryDirectory(prefix="s3dest-faults-") as tmp, database(kind) as url:
            env = S3destEnv(
                data_dir=Path(tmp) / "data",
                database_url=url,
                extra={
                    "S3DEST_LOG_LEVEL": "WARNING",
                    "S3DEST_SECRET_KEY": "",
                    "S3DEST_REQUEST_TIMEOUT_SECONDS": str(CLIENT_TIMEOUT),
                    "S3DEST_RETRY_BASE_SECONDS": "0.02",
                    "S3DEST_RETRY_MAX_SECONDS": "0.5",
                },
            )
            project_id, key = env.create_project("faults")
            server = serve(env, Path(tmp))
            scenario = FaultScenario(server.url, key, project_id, proxy, s3=s3, bucket=bucket)
            try:
                scenario.create_destination()
                began = time.monotonic()
                result = scenario.run(messages, timeout=timeout, batch=200)
                print(f"\n== {kind}: {messages} messages, {rate:.0%} faults, {after:.0%} after ==")
                figures = result.figures()
                figures["injected_by_kind_and_stage"] = {
                    f"{k}/{s}": n for (k, s), n in sorted(result.stats.injected.items())
                }
                figures["parked_metric"] = scenario.metric("s3dest_messages_parked_total")
                figures["held_metric"] = scenario.metric("s3dest_messages_held_total")
                figures["wall_seconds_with_checks"] = round(time.monotonic() - began, 1)
                print(json.dumps(figures, indent=2))
                for problem in result.problems[:20]:
                    print("PROBLEM:", problem)
                ok = (
                    not result.problems
                    and result.delivered == messages
                    and figures["parked_metric"] == 0
                    and figures["held_metric"] == 0
                )
                print("result:", "every promise kept" if ok else "BROKEN")
                if not ok:
                    print(server.log()[-4000:])
                return ok
            finally:
                scenario.close()
                server.kill()
    finally:
        proxy.stop()
        s3.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=0.2, help="fault probability per PUT")
    parser.add_argument("--after", type=float, default=0.5, help="share injected after S3")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--seed", type=int, default=5000)
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    ok = True
    for kind in kinds:
        ok = run(kind, args.messages, args.rate, args.after, args.seed, args.timeout) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
