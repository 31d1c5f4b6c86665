"""Small inline SVG charts, so that the HTML report needs nothing from the network."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

ARM_COLOURS = {
    "baseline": "#7f7f7f",
    "legacy": "#d62728",
    "legacy-on-v2": "#ff7f0e",
    "legacy-shadow": "#9467bd",
    "v2": "#1f77b4",
}
PERCENTILE_DASHES = {"p50": "", "p95": "6 3", "p99": "2 3"}
_FONT = 'font-family="system-ui, sans-serif" font-size="12"'
_MARGIN_LEFT, _MARGIN_RIGHT, _MARGIN_TOP, _MARGIN_BOTTOM = 58, 16, 52, 40
_LEGEND_Y = 40


@dataclass(frozen=True)
class Series:
    label: str
    colour: str
    points: Sequence[tuple[float, float | None]]
    dashes: str = ""


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """0 to at least `top` in round steps (1, 2, 2.5 or 5 times a power of ten)."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    return [i * step for i in range(math.ceil(top / step - 1e-9) + 1)]


def _label(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:g}"


def _text(x: float, y: float, text: str, attrs: str = 'text-anchor="middle" fill="#555"') -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" {_FONT} {attrs}>{escape(text)}</text>'


def _frame(width: int, height: int, title: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
        f'<rect width="{width}" height="{height}" fill="#fff"/>',
        _text(width / 2, 18, title, 'text-anchor="middle" font-weight="600"'),
    ]


def _legend(entries: Sequence[tuple[str, str, str]], x: float, y: float) -> list[str]:
    parts = []
    for label, colour, dashes in entries:
        parts.append(
            f'<line x1="{x:.1f}" y1="{y - 4}" x2="{x + 18:.1f}" y2="{y - 4}" stroke="{colour}" '
            f'stroke-width="2.5" stroke-dasharray="{dashes}"/>' + _text(x + 22, y, label, "")
        )
        x += 30 + 7 * len(label)
    return parts


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    y_label: str,
    x_label: str = "seconds into the run",
    width: int = 640,
    height: int = 280,
    y_top: float | None = None,
    shade_until: float | None = None,
) -> str:
    """Lines over a shared x axis; gaps where a value is None (no data yet).

    `shade_until` greys the start of the x axis: the warm-up, not counted in the tables.
    """
    xs = [x for s in series for x, _ in s.points]
    ys = [y for s in series for _, y in s.points if y is not None]
    x_ticks = nice_ticks(max(xs, default=1.0), 6)
    y_ticks = nice_ticks(y_top if y_top is not None else max(ys, default=1.0))
    left, top = _MARGIN_LEFT, _MARGIN_TOP
    plot_w = width - _MARGIN_LEFT - _MARGIN_RIGHT
    plot_h = height - _MARGIN_TOP - _MARGIN_BOTTOM

    def px(x: float) -> float:
        return left + plot_w * x / x_ticks[-1]

    def py(y: float) -> float:
        return top + plot_h * (1 - min(y, y_ticks[-1]) / y_ticks[-1])

    parts = _frame(width, height, title)
    if shade_until:
        parts.append(
            f'<rect x="{left}" y="{top}" width="{px(shade_until) - left:.1f}" height="{plot_h}" '
            'fill="#f0f0f0"/>' + _text(left + 4, top + 14, "warm-up", 'font-size="11" fill="#888"')
        )
    for y in y_ticks:
        parts.append(
            f'<line x1="{left}" y1="{py(y):.1f}" x2="{left + plot_w}" y2="{py(y):.1f}" '
            f'stroke="#e5e5e5"/>'
            + _text(left - 6, py(y) + 4, _label(y), 'text-anchor="end" fill="#555"')
        )
    parts += [_text(px(x), top + plot_h + 16, _label(x)) for x in x_ticks]
    parts += [
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
        'stroke="#999"/>',
        _text(left + plot_w / 2, height - 6, x_label),
        f'<text transform="translate(14 {top + plot_h / 2}) rotate(-90)" text-anchor="middle" '
        f'{_FONT} fill="#555">{escape(y_label)}</text>',
    ]
    for s in series:
        for run in _runs(s.points):
            path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in run)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{s.colour}" stroke-width="2" '
                f'stroke-dasharray="{s.dashes}" stroke-linejoin="round"/>'
            )
    parts += _legend([(s.label, s.colour, s.dashes) for s in series], left + 4, _LEGEND_Y)
    return "\n".join([*parts, "</svg>"])


def _runs(points: Sequence[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in points:
        if y is None:
            runs.append([])
        else:
            runs[-1].append((x, y))
    return [run for run in runs if run]


def bar_chart(
    categories: Sequence[str],
    groups: Sequence[tuple[str, str, Sequence[float | None]]],
    *,
    title: str,
    unit: str,
    width: int = 640,
) -> str:
    """Horizontal bars: one row per category, one bar per group (arm) in each row."""
    bar_h, gap, label_w = 11, 10, 250
    row_h = bar_h * len(groups) + gap
    height = _MARGIN_TOP + row_h * len(categories) + _MARGIN_BOTTOM
    values = [v for _, _, vs in groups for v in vs if v is not None]
    ticks = nice_ticks(max(values, default=1.0))
    plot_w = width - label_w - _MARGIN_RIGHT - 40

    def px(value: float) -> float:
        return label_w + plot_w * value / ticks[-1]

    parts = _frame(width, height, title)
    bottom = height - _MARGIN_BOTTOM
    for tick in ticks:
        parts.append(
            f'<line x1="{px(tick):.1f}" y1="{_MARGIN_TOP}" x2="{px(tick):.1f}" y2="{bottom}" '
            f'stroke="#e5e5e5"/>' + _text(px(tick), bottom + 16, _label(tick))
        )
    for row, category in enumerate(categories):
        y = _MARGIN_TOP + row * row_h + gap / 2
        parts.append(_text(label_w - 8, y + row_h / 2, category, 'text-anchor="end"'))
        for index, (_, colour, vs) in enumerate(groups):
            if (value := vs[row]) is None:
                continue
            top = y + index * bar_h
            parts.append(
                f'<rect x="{label_w}" y="{top:.1f}" width="{px(value) - label_w:.1f}" '
                f'height="{bar_h - 2}" fill="{colour}"><title>{escape(category)}: '
                f"{value:g} {escape(unit)}</title></rect>"
                + _text(px(value) + 4, top + bar_h - 3, f"{value:g}", 'font-size="10" fill="#333"')
            )
    parts.append(_text(label_w + plot_w / 2, height - 6, unit))
    parts += _legend([(label, colour, "") for label, colour, _ in groups], label_w, _LEGEND_Y)
    return "\n".join([*parts, "</svg>"])
