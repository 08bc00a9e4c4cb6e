"""Server-rendered SVG charts of a project's delivery activity (issue 15, item 9).

No script and no library: each chart is a small SVG string built here (text escaped,
colours as presentation attributes, which the dashboard's CSP allows), with a `<title>`
per bar or point for hover and an `aria-label` that says the figures in words.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from s3dest.store.queue.timeline import Activity

# User units: the chart is scaled to its box, so WIDTH sets how big the text is on screen.
# 360 keeps 12-unit labels at 11 px or more from a 375 px phone (a 330 px chart, 13 units
# there: deliveries.css) to a desktop's third of the page (~14 px); 480 made them 7.6 px.
WIDTH, HEIGHT = 360, 170
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 10, 24
FONT = 12
# Every colour at least 3:1 against the card in light (#ffffff) and dark (#171e29) mode
# (WCAG 1.4.11): relative luminance between 0.14 and 0.30. #7c3aed (2.9:1 on dark) was
# replaced by #8b5cf6.
PALETTE = ("#2563eb", "#d97706", "#dc2626", "#8b5cf6", "#059669", "#db2777", "#0891b2")


@dataclass(frozen=True, slots=True)
class Range:
    name: str  # "hour" | "day"
    label: str
    seconds: int
    step: int  # seconds per interval

    @property
    def intervals(self) -> int:
        return self.seconds // self.step


RANGES = {
    "hour": Range("hour", "last hour", 3600, 60),
    "day": Range("day", "last day", 86_400, 900),
}


def window(r: Range, now: float | None = None) -> float:
    """The start of the range: whole intervals, the last one holding now."""
    now = time.time() if now is None else now
    return (math.floor(now / r.step) + 1) * r.step - r.seconds


def _x(i: float, n: int) -> float:
    return LEFT + (WIDTH - LEFT - RIGHT) * i / n


def _clock(t: float) -> str:
    return time.strftime("%H:%M", time.gmtime(t))


def _frame(chart_id: str, label: str, body: list[str], a: Activity, n: int, ymax: str) -> Markup:
    plot_bottom = HEIGHT - BOTTOM
    ticks = []
    every = max(1, n // 4)
    for i in range(0, n + 1, every):
        x = _x(i, n)
        anchor = "end" if i + every > n else "start" if i == 0 else "middle"
        ticks.append(
            f'<text x="{x:.1f}" y="{HEIGHT - 6}" font-size="{FONT}" text-anchor="{anchor}" '
            f'fill="currentColor">{_clock(a.start + i * a.step)}</text>'
        )
    return Markup(
        f'<svg id="{chart_id}" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(label)}</title>"
        f'<line x1="{LEFT}" y1="{plot_bottom}" x2="{WIDTH - RIGHT}" y2="{plot_bottom}" '
        # the axis at full colour: at 0.35 opacity it was 1.6:1 on the card
        'stroke="currentColor"/>'
        f'<text x="{LEFT - 5}" y="{TOP + 9}" font-size="{FONT}" text-anchor="end" '
        f'fill="currentColor">{escape(ymax)}</text>'
        f'<text x="{LEFT - 5}" y="{plot_bottom}" font-size="{FONT}" text-anchor="end" '
        'fill="currentColor">0</text>' + "".join(ticks) + "".join(body) + "</svg>"
    )


def delivered_chart(a: Activity, r: Range) -> Markup:
    n = len(a.delivered)
    peak = max(a.delivered, default=0)
    top = max(peak, 1)
    height = HEIGHT - BOTTOM - TOP
    bars = []
    width = max(1.0, (WIDTH - LEFT - RIGHT) / n - 1)
    for i, count in enumerate(a.delivered):
        if not count:
            continue
        h = max(1.0, height * count / top)
        bars.append(
            f'<rect x="{_x(i, n):.1f}" y="{HEIGHT - BOTTOM - h:.1f}" width="{width:.1f}" '
            f'height="{h:.1f}" fill="{PALETTE[0]}" data-count="{count}">'
            f"<title>{_clock(a.start + i * a.step)} UTC: {count} delivered</title></rect>"
        )
    per = "minute" if r.step == 60 else f"{r.step // 60} minutes"
    label = f"Delivered per {per}, {r.label}: {sum(a.delivered)} in all, at most {peak}"
    return _frame("chart-delivered", label, bars, a, n, str(peak))


def _fmt_seconds(value: float) -> str:
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.1f} s"
    return f"{value / 60:.1f} min"


def _polyline(
    values: Sequence[float | None], n: int, y: object, colour: str, name: str, a: Activity
) -> list[str]:
    to_y = y  # a callable value → y
    points = []
    dots = []
    for i, v in enumerate(values):
        if v is None:
            continue
        px, py = _x(i + 0.5, n), to_y(v)  # type: ignore[operator]
        points.append(f"{px:.1f},{py:.1f}")
        # A point with no neighbour has no line to show it: a bigger dot (2 units was ~2 px
        # on a phone, lost on the axis).
        alone = all(j < 0 or j >= len(values) or values[j] is None for j in (i - 1, i + 1))
        dots.append(
            f'<circle cx="{px:.1f}" cy="{py:.1f}" r="{3.5 if alone else 2}" fill="{colour}" '
            f'data-value="{v:.4f}">'
            f"<title>{_clock(a.start + i * a.step)} UTC: {escape(name)} {_fmt_seconds(v)}"
            "</title></circle>"
        )
    if not points:
        return []
    return [
        f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" '
        f'stroke-width="1.5" data-series="{escape(name)}"/>',
        *dots,
    ]


def latency_chart(a: Activity, r: Range) -> Markup:
    n = len(a.p50)
    known = [v for v in (*a.p50, *a.p99) if v is not None]
    top = max(known, default=1.0) or 1.0
    height = HEIGHT - BOTTOM - TOP

    def y(v: float) -> float:
        return HEIGHT - BOTTOM - height * (v / top)

    body = _polyline(a.p99, n, y, PALETTE[1], "p99", a) + _polyline(
        a.p50, n, y, PALETTE[0], "p50", a
    )
    p50 = [v for v in a.p50 if v is not None]
    p99 = [v for v in a.p99 if v is not None]
    if p50:
        label = (
            f"Accept to delivered latency, {r.label}: p50 up to {_fmt_seconds(max(p50))}, "
            f"p99 up to {_fmt_seconds(max(p99))}"
        )
    else:
        label = f"Accept to delivered latency, {r.label}: nothing delivered"
    return _frame("chart-latency", label, body, a, n, _fmt_seconds(top) if known else "—")


def errors_chart(
    a: Activity, r: Range, names: dict[str, str]
) -> tuple[Markup, list[tuple[str, str, int]]]:
    """The chart and its legend: (name, colour, failed attempts in the range)."""
    n = max((len(v) for v in a.errors.values()), default=r.intervals)
    top = max((max(v) for v in a.errors.values()), default=0)
    height = HEIGHT - BOTTOM - TOP

    def y(v: float) -> float:
        return HEIGHT - BOTTOM - height * (v / max(top, 1))

    body: list[str] = []
    legend: list[tuple[str, str, int]] = []
    ordered = sorted(a.errors.items(), key=lambda item: -sum(item[1]))
    for k, (destination_id, counts) in enumerate(ordered):
        colour = PALETTE[(k + 2) % len(PALETTE)]
        name = names.get(destination_id, "(deleted)")
        values: list[float | None] = [c if c else None for c in counts]
        body += _polyline(values, n, y, colour, name, a)
        legend.append((name, colour, sum(counts)))
    total = sum(t for _, _, t in legend)
    label = f"Failed attempts per destination, {r.label}: {total} in all"
    chart = _frame(
        "chart-errors", label, body, Activity(a.start, a.step, [], [], [], {}), n, str(top)
    )
    return chart, legend
