"""The analytics page's charts as geometry: columns by day (stacked when there are several series), a line
with gaps, horizontal bars. The template draws them as inline SVG: no script and no library, so the console
works offline and under its Content-Security-Policy (classes and SVG attributes, never style attributes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

WIDTH = 720
PLOT_HEIGHT = 160
LEFT = 56  # room for the largest value on the left
BOTTOM = 22  # room for the dates under the columns
# Bars: a label (cut to LABEL_CHARS), the bar, the value after it.
BAR_ROW, BAR_HEIGHT, BAR_LABEL, BAR_LENGTH = 28, 18, 290, 250
LABEL_CHARS = 44


@dataclass(frozen=True, slots=True)
class Rect:
    """One drawn rectangle: a column's segment or a bar."""

    x: float
    y: float
    width: float
    height: float
    series: str  # the CSS class suffix of its series
    title: str  # what a pointer over it shows (SVG <title>)


@dataclass(frozen=True, slots=True)
class Label:
    """A text on the chart."""

    x: float
    y: float
    text: str
    anchor: str = "start"


@dataclass(frozen=True, slots=True)
class Chart:
    """Everything the template draws for one chart."""

    id: str
    title: str
    width: int
    height: int
    rects: list[Rect]
    labels: list[Label]
    # Polylines as SVG `points`, one per unbroken run of a line chart.
    lines: list[str]
    # The series shown, for the legend: (CSS class suffix, title).
    legend: list[tuple[str, str]]


def _day_labels(days: Sequence[date], step: float) -> list[Label]:
    """The first, middle and last dates under the columns."""
    if not days:
        return []
    chosen = sorted({0, len(days) // 2, len(days) - 1})
    y = PLOT_HEIGHT + 16
    anchors = {0: "start", len(days) - 1: "end"}
    return [
        Label(
            LEFT + step * index + (step if index == len(days) - 1 else 0),
            y,
            f"{days[index]:%d.%m}",
            anchors.get(index, "middle"),
        )
        for index in chosen
    ]


def columns(
    chart_id: str,
    title: str,
    days: Sequence[date],
    series: Sequence[tuple[str, str, Sequence[int]]],
) -> Chart:
    """A column per day; several series (CSS suffix, title, one value a day) stack bottom up."""
    totals = [sum(values[index] for _n, _t, values in series) for index in range(len(days))]
    top = max(totals, default=0) or 1
    step = (WIDTH - LEFT) / max(len(days), 1)
    gap = 1.0 if step > 3 else 0.0
    rects = []
    for index, day in enumerate(days):
        base = float(PLOT_HEIGHT)
        for name, series_title, values in series:
            value = values[index]
            if not value:
                continue
            height = PLOT_HEIGHT * value / top
            base -= height
            rects.append(
                Rect(
                    LEFT + step * index,
                    base,
                    max(step - gap, 0.5),
                    height,
                    name,
                    f"{day:%d.%m.%Y}: {series_title.lower()} — {value}",
                )
            )
    labels = [
        Label(LEFT - 6, 10, str(top), "end"),
        Label(LEFT - 6, PLOT_HEIGHT, "0", "end"),
    ]
    return Chart(
        chart_id,
        title,
        WIDTH,
        PLOT_HEIGHT + BOTTOM,
        rects,
        labels + _day_labels(days, step),
        [],
        [(name, series_title) for name, series_title, _v in series] if len(series) > 1 else [],
    )


def line(
    chart_id: str, title: str, days: Sequence[date], values: Sequence[float | None], top_label: str
) -> Chart:
    """A line over the days; a day without a value (nothing to divide) breaks it."""
    top = max((v for v in values if v is not None), default=0.0) or 1.0
    step = (WIDTH - LEFT) / max(len(days), 1)
    runs: list[list[tuple[float, float]]] = [[]]
    for index, value in enumerate(values):
        if value is None:
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append((LEFT + step * index + step / 2, PLOT_HEIGHT - PLOT_HEIGHT * value / top))
    # A single point would draw nothing: it gets a short dash of its own.
    drawn = [
        run if len(run) > 1 else [(run[0][0] - 3, run[0][1]), (run[0][0] + 3, run[0][1])]
        for run in runs
        if run
    ]
    lines = [" ".join(f"{x:.1f},{y:.1f}" for x, y in run) for run in drawn]
    labels = [Label(LEFT - 6, 10, top_label, "end"), Label(LEFT - 6, PLOT_HEIGHT, "0", "end")]
    return Chart(
        chart_id, title, WIDTH, PLOT_HEIGHT + BOTTOM, [], labels + _day_labels(days, step), lines, []
    )


def bars(chart_id: str, title: str, items: Sequence[tuple[str, str, float, str]]) -> Chart:
    """Horizontal bars: (CSS suffix, label, value, the value as shown) each, scaled to the largest."""
    top = max((value for _s, _l, value, _t in items), default=0.0) or 1.0
    rects, labels = [], []
    for index, (series, label, value, shown) in enumerate(items):
        y = index * BAR_ROW
        length = BAR_LENGTH * value / top
        if value:
            rects.append(Rect(BAR_LABEL, y + 4, max(length, 1.0), BAR_HEIGHT, series, f"{label}: {shown}"))
        labels.append(
            Label(0, y + 17, label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…")
        )
        labels.append(Label(BAR_LABEL + length + 8, y + 17, shown))
    return Chart(chart_id, title, WIDTH, max(len(items), 1) * BAR_ROW + 4, rects, labels, [], [])
