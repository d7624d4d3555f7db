"""Bar charts drawn on the server as inline SVG (no script, no library): stacked columns
(a value per day) and stacked horizontal bars (a value per row). A chart is geometry
for ``_charts.html``; every rectangle has a title with its figure, the SVG has a title
and a summary, and the page shows the same figures in a table beside it.

Why not a charting package: pygal (maintained) styles its SVG with an embedded
``<style>`` and inline attributes and adds tooltip script, which the pages' CSP
(``style-src 'self'``, ``script-src 'self'``) forbids; the few charts here are a screen of
arithmetic, styled by the pages' one stylesheet (``.chart .s0`` ...).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

SERIES = 5  # classes s0..s4 in app.css

Piece = tuple[int, float, str]  # (series, value, the rectangle's title)


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str = "middle"


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    summary: str
    width: int
    height: int
    rects: list[Rect]
    labels: list[Label]
    keys: list[tuple[str, str]]  # (css class, series name) for the legend
    axis: tuple[float, float, float, float]


def _css(series: int) -> str:
    return f"s{series % SERIES}"


def columns(chart_id: str, title: str, summary: str,
            groups: Sequence[tuple[str, Sequence[Piece]]], series: Sequence[str], *,
            width: int = 600, height: int = 160) -> Chart:
    """One column a group (a day), its pieces stacked; a label under every few."""
    left, top, bottom = 30, 12, 20
    top_value = max([1.0, *(sum(v for _, v, _ in pieces) for _, pieces in groups)])
    plot = height - top - bottom
    slot = (width - left - 5) / max(1, len(groups))
    step = max(1, math.ceil(len(groups) / 10))
    rects: list[Rect] = []
    labels = [Label(left - 4, top + 4, f"{top_value:g}", "end"),
              Label(left - 4, top + plot, "0", "end")]
    for index, (name, pieces) in enumerate(groups):
        x, y = left + index * slot, float(top + plot)
        for number, value, text in pieces:
            if value <= 0:
                continue
            tall = value / top_value * plot
            y -= tall
            rects.append(Rect(round(x + slot * .15, 2), round(y, 2), round(slot * .7, 2),
                              round(tall, 2), _css(number), text))
        if index % step == 0:
            labels.append(Label(round(x + slot / 2, 2), height - 6, name))
    return Chart(chart_id, title, summary, width, height, rects, labels,
                 [(_css(n), s) for n, s in enumerate(series)],
                 (left, top + plot, width - 5, top + plot))


def bars(chart_id: str, title: str, summary: str,
         rows: Sequence[tuple[str, Sequence[Piece], str]], series: Sequence[str], *,
         width: int = 600, row_height: int = 22) -> Chart:
    """One bar a row, its pieces stacked left to right; ``rows`` are (label, pieces,
    the text after the bar)."""
    left, right = 150, 60
    top_value = max([1.0, *(sum(v for _, v, _ in pieces) for _, pieces, _ in rows)])
    plot = width - left - right
    rects: list[Rect] = []
    labels: list[Label] = []
    for index, (name, pieces, after) in enumerate(rows):
        y, x = 6 + index * row_height, float(left)
        labels.append(Label(left - 6, y + row_height * .6, name, "end"))
        for number, value, text in pieces:
            if value <= 0:
                continue
            wide = value / top_value * plot
            rects.append(Rect(round(x, 2), y + 3, round(wide, 2), row_height - 8,
                              _css(number), text))
            x += wide
        labels.append(Label(round(x + 4, 2), y + row_height * .6, after, "start"))
    height = 12 + len(rows) * row_height
    return Chart(chart_id, title, summary, width, height, rects, labels,
                 [(_css(n), s) for n, s in enumerate(series)],
                 (left, 4, left, height - 6))


def duration(seconds: float | None) -> str:
    """Business seconds in words: "45 s", "12 min", "3 h 5 min"; None: "—"."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"
