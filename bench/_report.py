"""What the benchmarks print beside their figures: the machine and its load during a run,
percentiles, headings and the targets' PASS/FAIL lines.

Nothing here is part of s3dest; the benchmarks are scripts that print figures.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

# ---------------------------------------------------------------------------- machine


def load_average() -> str:
    with open("/proc/loadavg") as fh:
        one, five, fifteen = fh.read().split()[:3]
    return f"load average {one}, {five}, {fifteen} on {os.cpu_count()} CPUs"


class LoadSampler:
    """Samples the 1-minute load average while a measurement runs."""

    def __init__(self) -> None:
        self.samples: list[float] = []

    def sample(self) -> None:
        with open("/proc/loadavg") as fh:
            self.samples.append(float(fh.read().split()[0]))

    def summary(self) -> str:
        if not self.samples:
            return "load: n/a"
        return (
            f"1-min load during run: min {min(self.samples):.2f}, "
            f"max {max(self.samples):.2f} ({os.cpu_count()} CPUs)"
        )


def machine_line() -> str:
    return f"{load_average()}; python {sys.version.split()[0]}"


# ---------------------------------------------------------------------------- output


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class Check:
    name: str
    ok: bool | None  # None: not measured (pending / skipped)
    detail: str

    def line(self) -> str:
        mark = {True: "PASS", False: "FAIL", None: "PENDING"}[self.ok]
        return f"  [{mark}] {self.name}: {self.detail}"


def print_checks(checks: Sequence[Check]) -> None:
    print("\ntargets:")
    for check in checks:
        print(check.line())


def heading(text: str) -> None:
    print(f"\n== {text} ==", flush=True)
