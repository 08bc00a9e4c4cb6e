"""CPU and memory of processes for the benchmarks: /proc/PID/stat and status, the children
of a process, and a command run to completion with wait4()'s figures.

Nothing here is part of s3dest; the benchmarks are scripts that print figures.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a live process, all its threads included (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat", "rb") as fh:
        raw = fh.read().decode()
    # The command name (field 2) may contain spaces; everything after the last ')' is fixed.
    fields = raw[raw.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLK_TCK


def proc_tree_cpu_seconds(pid: int) -> float:
    """utime + stime of a process plus its reaped children (cutime + cstime)."""
    with open(f"/proc/{pid}/stat", "rb") as fh:
        raw = fh.read().decode()
    fields = raw[raw.rindex(")") + 2 :].split()
    return sum(int(f) for f in fields[11:15]) / CLK_TCK


def proc_status_kib(pid: int, field: str) -> int:
    """A kB field of /proc/PID/status, e.g. VmHWM (peak RSS) or VmRSS."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def peak_rss_mib(pid: int) -> float:
    return proc_status_kib(pid, "VmHWM") / 1024


def tree_peak_rss_mib(pid: int) -> float:
    """Peak RSS of a server and its ingest worker processes (s3dest.ingest.processes): the
    server's, the forkserver's, and each worker's beyond the pages it was forked with (its
    forkserver's resident size, shared). Without workers, the server's own peak."""
    total = peak_rss_mib(pid)
    for child in children_of(pid):
        try:
            total += peak_rss_mib(child)
            inherited = rss_mib(child)
            for worker in children_of(child):
                total += max(0.0, peak_rss_mib(worker) - inherited)
        except (OSError, ValueError, KeyError):
            continue
    return total


def rss_mib(pid: int) -> float:
    return proc_status_kib(pid, "VmRSS") / 1024


def children_of(pid: int) -> list[int]:
    """Direct children of a process (via /proc/PID/task/*/children)."""
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/children") as fh:
                    out.extend(int(p) for p in fh.read().split())
            except OSError:
                pass
    except OSError:
        pass
    return out


def run_measured(
    argv: Sequence[str], *, env: dict[str, str] | None = None, cwd: str | None = None
) -> tuple[int, float, float, float, str]:
    """Run a command to completion: (exit code, wall s, CPU s, peak RSS MiB, output tail).

    CPU and peak RSS come from wait4() on the child, so they are exactly that process (and
    any children it waited for), whatever else this process is doing.
    """
    started = time.perf_counter()
    proc = subprocess.Popen(
        list(argv),
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    output = proc.stdout.read()  # drains the pipe; returns at EOF (the child exited)
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    cpu = usage.ru_utime + usage.ru_stime
    return (
        proc.returncode,
        wall,
        cpu,
        usage.ru_maxrss / 1024,
        output.decode(errors="replace")[-3000:],
    )
