"""Summaries of py-spy profiles (``--format raw``, collapsed stacks) for the benchmarks: the
top frames, and the share of samples per category of frames.

Nothing here is part of s3dest; the benchmarks are scripts that print figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def summarize_collapsed(path: Path, *, top: int = 15, indent: str = "") -> str:
    """Top self and inclusive frames of a py-spy ``--format raw`` (collapsed stacks) file.

    py-spy leaves idle threads out by default, so the samples approximate Python CPU time.
    """
    self_counts: dict[str, int] = {}
    incl_counts: dict[str, int] = {}
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if not f.startswith(("thread (", "process "))]
        if not frames:
            continue
        total += count
        leaf = _short_frame(frames[-1])
        self_counts[leaf] = self_counts.get(leaf, 0) + count
        for frame in {_short_frame(f) for f in frames}:
            incl_counts[frame] = incl_counts.get(frame, 0) + count
    if not total:
        return f"{indent}(no samples)"
    lines = [f"{indent}{total} samples; top self:"]
    for name, count in sorted(self_counts.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"{indent}  {100 * count / total:5.1f}%  {name}")
    lines.append(f"{indent}top inclusive:")
    for name, count in sorted(incl_counts.items(), key=lambda kv: -kv[1])[: top * 2]:
        lines.append(f"{indent}  {100 * count / total:5.1f}%  {name}")
    return "\n".join(lines)


def _short_frame(frame: str) -> str:
    # "claim (s3dest/store/queue/operations.py:123)" -> "claim (s3dest/store/queue/operations.py)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    filename = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            break
    return f"{name} ({filename})" if filename else name


def categorize_collapsed(
    path: Path, rules: Sequence[tuple[str, Sequence[str]]], *, other: str = "other"
) -> list[tuple[str, float]]:
    """Share of samples per category: a stack goes to the first rule with a marker (a
    substring of a frame, e.g. ``"claim (s3dest/store/queue/"``) in any of its frames."""
    counts: dict[str, int] = {}
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short_frame(f) for f in stack.split(";")]
        total += count
        for name, markers in rules:
            if any(m in f for m in markers for f in frames):
                counts[name] = counts.get(name, 0) + count
                break
        else:
            counts[other] = counts.get(other, 0) + count
    if not total:
        return []
    return sorted(((k, v / total) for k, v in counts.items()), key=lambda kv: -kv[1])
