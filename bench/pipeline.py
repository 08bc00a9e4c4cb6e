"""End-to-end benchmark (issue 4): s3dest over HTTP beside `s5cmd cp` and a boto3 loop.

    .venv/bin/python -m bench.pipeline [--db sqlite|postgres|both] [--messages 20000]
                                       [--s3 moto|rgw] [--skip-large] [--skip-floor]
                                       [--profile DIR] [--keepalive-proxy]

Against a local S3 server started here: moto (IAM enforced; the default) or, with
`--s3 rgw`, a throwaway Ceph RGW (tests/support/rgw.py), which keeps connections alive as
real S3 does (moto closes every one):

1. s3dest: `s3dest serve` (API + workers in one process, default settings, durability on)
   with a destination on a put-only IAM user. N messages of ~1 KiB are sent over HTTP in
   batches of 100 by a few concurrent senders until all are delivered. Printed: messages/s,
   CPU time of the s3dest process per delivered message (/proc/PID/stat delta over the run,
   all threads), p50/p99 accept→delivered latency (from the delivery records), and for
   PostgreSQL also the database server's CPU (a separate process, shown apart).
2. `s5cmd cp 'dir/*' s3://bucket/prefix/` of the same N objects from files; CPU from
   getrusage(RUSAGE_CHILDREN).
3. a plain boto3 `put_object` loop over the same N bodies; CPU from time.process_time.
4. one 1 GiB message ingested over HTTP (streamed from a file) and delivered; peak RSS
   (VmHWM) of a fresh `s3dest serve` process and its ingest worker processes.
5. the client floor: blocking `obstore.put` of the same bodies and headers from 32 threads
   (what s3dest's sender threads do, without any s3dest code); CPU per PUT from
   time.process_time, printed beside s3dest's CPU per message with the ratio.

The S3 server is a separate process (RGW: three); its CPU is not counted for anyone.

This module parses the options, runs the parts and prints the summary; the parts are
bench/_pipeline_s3dest.py (1), bench/_pipeline_clients.py (2, 3, 5) and
bench/_pipeline_large.py (4), on the helpers bench/_server_run.py, bench/_databases.py
and bench/_s3_server.py.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench._databases import databases
from bench._keepalive import start_keepalive_proxy
from bench._pipeline_clients import FLOOR_THREADS, _bodies, bench_boto3, bench_floor, bench_s5cmd
from bench._pipeline_large import TARGET_RSS_MB, LargeFigures, bench_large
from bench._pipeline_s3dest import Code, PipelineFigures, _print_comparison, bench_s3dest
from bench._report import Check, heading, machine_line, percentile, print_checks

from s3dest.devtools.moto import start_moto_server

TARGET_FLOOR_RATIO = 1.5  # issue 16: end-to-end CPU per message against the bare PUT loop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--skip-s5cmd", action="store_true")
    parser.add_argument("--skip-boto3", action="store_true")
    parser.add_argument("--skip-floor", action="store_true", help="no bare obstore PUT loop")
    parser.add_argument(
        "--s3",
        choices=["moto", "rgw"],
        default="moto",
        help="the S3 server: moto (IAM enforced, closes every connection) or a throwaway "
        "Ceph RGW (keeps connections alive, as real S3 does; tests/support/rgw.py)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="another checkout (e.g. `git worktree add /tmp/base <commit>`): its s3dest runs "
        "beside this one's, alternating, --rounds times each, and the summary compares them",
    )
    parser.add_argument("--rounds", type=int, default=2, help="runs of each code with --baseline")
    parser.add_argument("--large-bytes", type=int, default=2**30)
    parser.add_argument(
        "--rss-cap-mb",
        type=float,
        default=3072,
        help="kill s3dest if its RSS passes this during the large message (protects the box)",
    )
    parser.add_argument(
        "--profile", type=Path, default=None, help="py-spy the s3dest server into DIR"
    )
    parser.add_argument(
        "--keepalive-proxy",
        action="store_true",
        help="send every client's S3 traffic through a keep-alive proxy in front of moto "
        "(moto closes every connection; real S3 does not)",
    )
    args = parser.parse_args(argv)
    if args.s3 == "rgw" and args.keepalive_proxy:
        parser.error("--keepalive-proxy is for moto; RGW keeps connections alive itself")
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]

    print(f"bench.pipeline — {machine_line()}")
    s3: Any
    if args.s3 == "rgw":
        from tests.support.rgw import start_rgw

        s3 = start_rgw()
        print(f"Ceph RGW {s3.endpoint}, booted in {s3.boot_seconds:.1f} s ({s3.base_dir})")
    else:
        s3 = start_moto_server()
    proxy = start_keepalive_proxy(s3.endpoint) if args.keepalive_proxy else None
    endpoint = proxy.endpoint if proxy is not None else s3.endpoint
    print(f"{args.s3} server {s3.endpoint}; clients use {endpoint}")
    checks: list[Check] = []
    results: dict[str, PipelineFigures] = {}
    compared: dict[str, dict[str, list[PipelineFigures]]] = {}
    codes = [Code("s3dest")]
    if args.baseline is not None:
        if not (args.baseline / "src" / "s3dest").is_dir():
            parser.error(f"--baseline {args.baseline}: no src/s3dest there")
        codes = [Code("baseline", args.baseline.resolve() / "src"), Code("s3dest")]
    s5cmd_ms = boto_ms = floor_ms = None
    large: dict[str, LargeFigures] = {}
    try:
        with (
            tempfile.TemporaryDirectory(prefix="s3dest-bench-") as tmp,
            databases(kinds) as dbs,
        ):
            workdir = Path(tmp)
            for kind in kinds:
                runs = compared.setdefault(kind, {code.label: [] for code in codes})
                for round_ in range(args.rounds if args.baseline is not None else 1):
                    # Alternate which code goes first: the machine drifts during a run.
                    for code in codes if round_ % 2 == 0 else codes[::-1]:
                        figures = bench_s3dest(
                            s3,
                            endpoint,
                            dbs[kind],
                            args.messages,
                            args.batch,
                            args.senders,
                            workdir,
                            args.profile,
                            code,
                        )
                        runs[code.label].append(figures)
                results[kind] = runs["s3dest"][-1]
            bodies = _bodies(args.messages)
            if not args.skip_floor:
                floor_ms = bench_floor(s3, endpoint, bodies)
            if not args.skip_s5cmd:
                s5cmd_ms = bench_s5cmd(s3, endpoint, bodies, workdir)
            if not args.skip_boto3:
                boto_ms = bench_boto3(s3, endpoint, bodies)
            if not args.skip_large:
                for kind in kinds:
                    large[kind] = bench_large(
                        s3, dbs[kind], args.large_bytes, workdir, args.rss_cap_mb
                    )
    finally:
        if proxy is not None:
            proxy.stop()
        s3.stop()

    heading("summary")
    print(f"  {'':<34}{'msg/s':>8}{'CPU ms/msg':>12}{'p50 ms':>9}{'p99 ms':>9}")
    for kind, f in results.items():
        print(
            f"  {'s3dest on ' + kind:<34}{f.rate:>8.0f}{f.cpu_ms:>12.3f}"
            f"{percentile(f.latencies, 50) * 1000:>9.0f}{percentile(f.latencies, 99) * 1000:>9.0f}"
        )
        if kind == "postgres":
            both = (f.cpu + f.db_cpu) * 1000 / f.messages
            print(f"  {'  + PostgreSQL server CPU':<34}{'':>8}{both:>12.3f}")
    if args.baseline is not None:
        _print_comparison(compared, args.baseline)
    if floor_ms is not None:
        print(f"  {f'obstore PUT floor ({FLOOR_THREADS} threads)':<34}{'':>8}{floor_ms:>12.3f}")
        for kind, f in results.items():
            # What the user's machine pays: on PostgreSQL its server's processes count too.
            total_ms = (f.cpu + f.db_cpu) * 1000 / f.messages
            label = f"  s3dest on {kind}{' + server' if kind == 'postgres' else ''} / floor"
            print(f"  {label:<34}{'':>8}{total_ms / floor_ms:>11.2f}x")
            checks.append(
                Check(
                    f"s3dest CPU/message ≤ {TARGET_FLOOR_RATIO}× the obstore floor ({kind})",
                    total_ms <= TARGET_FLOOR_RATIO * floor_ms,
                    f"{total_ms:.3f} ms vs floor {floor_ms:.3f} ms "
                    f"(ratio {total_ms / floor_ms:.2f}; s3dest's own work may cost "
                    f"{(TARGET_FLOOR_RATIO - 1) * floor_ms:.3f} ms, it costs "
                    f"{total_ms - floor_ms:.3f})",
                )
            )
    if s5cmd_ms is not None:
        print(f"  {'s5cmd cp (per object)':<34}{'':>8}{s5cmd_ms:>12.3f}")
    if boto_ms is not None:
        print(f"  {'boto3 put_object loop':<34}{'':>8}{boto_ms:>12.3f}")
    for kind, f in results.items():
        if s5cmd_ms is not None:
            checks.append(
                Check(
                    f"s3dest CPU/message ≤ s5cmd CPU/object ({kind})",
                    f.cpu_ms <= s5cmd_ms,
                    f"{f.cpu_ms:.3f} ms vs s5cmd {s5cmd_ms:.3f} ms "
                    f"(ratio {f.cpu_ms / s5cmd_ms:.2f})",
                )
            )
    for kind, lf in large.items():
        checks.append(
            Check(f"1 GiB over HTTP: peak RSS < {TARGET_RSS_MB} MB ({kind})", lf.ok, lf.detail)
        )
    if args.skip_large:
        checks.append(Check(f"1 GiB over HTTP: peak RSS < {TARGET_RSS_MB} MB", None, "skipped"))
    print_checks(checks)
    print(f"\n{machine_line()}")
    return 0 if all(c.ok for c in checks if c.ok is not None) else 1


if __name__ == "__main__":
    sys.exit(main())
