"""`make mutate`'s summary: the mutation score of each mutated module, and the survivors.

Reads `mutmut results --all true` (run from the repository root after `mutmut run`). A
mutant counts as killed when a test failed or timed out on it; "no tests" (no fast test
reaches the function) counts as survived, as mutmut's own score does. docs/mutation.md
records each survivor and why it lives.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

_LINE = re.compile(r"^\s+(?P<name>\S+)__mutmut_\d+: (?P<status>.+)$")
_KILLED = {"killed", "timeout"}
_NOT_RUN = {"skipped", "not checked"}


def module_of(name: str) -> str:
    """`s3dest.keys.template.x_render` or `…template.xǁKeyTemplateǁrender` -> the module."""
    return re.split(r"\.x[_ǁ]", name, maxsplit=1)[0]


def main() -> int:
    mutmut = Path(sys.executable).with_name("mutmut")
    output = subprocess.run(
        [str(mutmut), "results", "--all", "true"], capture_output=True, text=True, check=True
    ).stdout
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    survivors: list[str] = []
    for line in output.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        status = match["status"].strip()
        by_module[module_of(match["name"])][status] += 1
        if status not in _KILLED | _NOT_RUN:
            survivors.append(f"{line.strip()}")
    if not by_module:
        print("no mutants found: run `mutmut run` first", file=sys.stderr)
        return 1
    header = ("module", "mutants", "killed", "survived", "no tests", "score")
    print(f"{header[0]:45} " + " ".join(f"{h:>8}" for h in header[1:]))
    total: Counter[str] = Counter()
    for module in sorted(by_module):
        counts = by_module[module]
        total.update(counts)
        print(_row(module, counts))
    print(_row("all", total))
    print(f"\n{len(survivors)} surviving mutants (`mutmut show <name>` shows one):")
    for survivor in survivors:
        print(f"  {survivor}")
    not_run = sum(total[s] for s in _NOT_RUN)
    if not_run:
        print(f"\n{not_run} mutants were not run (interrupted?): the score covers the rest")
    return 0


def _row(module: str, counts: Counter[str]) -> str:
    killed = sum(counts[s] for s in _KILLED)
    run = sum(counts.values()) - sum(counts[s] for s in _NOT_RUN)
    no_tests = counts["no tests"]
    score = f"{100 * killed / run:.1f}%" if run else "-"
    return f"{module:45} {run:>8} {killed:>7} {run - killed - no_tests:>9} {no_tests:>9} {score:>7}"


if __name__ == "__main__":
    sys.exit(main())
