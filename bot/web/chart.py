"""The overview's bar chart as plain geometry; the template draws it as inline SVG (no script)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

WIDTH, HEIGHT = 760, 220
LEFT, BOTTOM, TOP = 36, 28, 10
# Stylesheet classes chart-0 … chart-5 colour the topics in turn.
COLOURS = 6


@dataclass(frozen=True)
class Bar:
    topic: str
    label: str
    day: str
    count: int
    x: float
    y: float
    width: float
    height: float
    colour: int


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    # (y, label) of the horizontal grid lines, and (x, label) of the day labels under the bars.
    ticks: list[tuple[float, int]]
    days: list[tuple[float, str]]
    legend: list[tuple[str, int]]
    baseline: float


def _step(peak: int) -> int:
    for step in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000):
        if peak / step <= 5:
            return step
    return max(1, peak // 5)


def bar_chart(counts: dict[str, list[int]], labels: dict[str, str], last_day: date) -> Chart:
    """Bars grouped by day, one per topic; a bar's height is its count on one scale for all."""
    days = len(next(iter(counts.values()), []))
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    peak = max((n for series in counts.values() for n in series), default=0)
    step = _step(max(peak, 1))
    top = max(step, -(-peak // step) * step)
    group = plot_w / max(days, 1)
    bar_w = max(1.0, (group - 4) / max(len(counts), 1))
    baseline = TOP + plot_h
    bars = []
    for index, (topic, series) in enumerate(counts.items()):
        for offset, count in enumerate(series):
            height = plot_h * count / top
            day = last_day - timedelta(days=days - 1 - offset)
            bars.append(Bar(topic=topic, label=labels.get(topic, topic), day=day.isoformat(), count=count,
                            x=round(LEFT + offset * group + 2 + index * bar_w, 2), y=round(baseline - height, 2),
                            width=round(bar_w, 2), height=round(height, 2), colour=index % COLOURS))
    ticks = [(round(baseline - plot_h * value / top, 2), value) for value in range(0, top + 1, step)]
    day_labels = [(round(LEFT + i * group + group / 2, 2), (last_day - timedelta(days=days - 1 - i)).strftime("%m-%d"))
                  for i in range(days)]
    legend = [(labels.get(topic, topic), i % COLOURS) for i, topic in enumerate(counts)]
    return Chart(width=WIDTH, height=HEIGHT, bars=bars, ticks=ticks, days=day_labels, legend=legend, baseline=baseline)
