"""Key revocation latency across processes (issue 13, SPEC §5: "effective in every process
within a second"): two `s3dest serve` processes share one database; a key is revoked
through one while the other is polled with it every 10 ms, and the time until the other
refuses it is printed, over several rounds.

    .venv/bin/python -m bench.revocation                 # SQLite file shared by both
    .venv/bin/python -m bench.revocation --postgres      # a throwaway PostgreSQL cluster

Expected: up to the API's key cache (0.5 s, s3dest.api.deps.CACHE_SECONDS) plus one
request; the median about half of it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from tests.support.s3dest_server import S3destEnv, serve


def _rounds(env: S3destEnv, tmp: Path, rounds: int) -> list[float]:
    _, keeper = env.create_project("bench")
    one, two = serve(env, tmp), serve(env, tmp)
    out: list[float] = []
    try:
        admin = httpx.Client(
            base_url=one.url, headers={"Authorization": f"Bearer {keeper}"}, timeout=30
        )
        for _ in range(rounds):
            made = admin.post("/v1/api-keys", json={"name": "doomed"}).json()
            victim = httpx.Client(
                base_url=two.url, headers={"Authorization": f"Bearer {made['key']}"}, timeout=30
            )
            for _ in range(3):
                victim.get("/v1/destinations").raise_for_status()
            admin.delete(f"/v1/api-keys/{made['id']}").raise_for_status()
            start = time.monotonic()
            while victim.get("/v1/destinations").status_code == 200:
                time.sleep(0.01)
            out.append(time.monotonic() - start)
            victim.close()
        admin.close()
    finally:
        one.kill()
        two.kill()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        cluster = None
        url = None
        if args.postgres:
            from tests.support.postgres import start_postgres

            cluster = start_postgres()
            url = cluster.create_database("bench_revocation")
        try:
            env = S3destEnv(data_dir=tmp / "data", database_url=url)
            times = _rounds(env, tmp, args.rounds)
        finally:
            if cluster is not None:
                cluster.destroy()
    ms = sorted(t * 1000 for t in times)
    print(f"database: {'PostgreSQL' if args.postgres else 'SQLite (one file)'}")
    print(f"load average (1 min): {os.getloadavg()[0]:.2f}")
    print(
        f"revocation seen by the other process, {len(ms)} rounds: "
        f"median {statistics.median(ms):.0f} ms, max {ms[-1]:.0f} ms, min {ms[0]:.0f} ms"
    )


if __name__ == "__main__":
    main()
