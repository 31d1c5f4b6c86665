"""`comparison.html`: the Markdown report rendered (markdown-it-py), with inline SVG charts
under it: one self-contained page, nothing fetched."""

from __future__ import annotations

from html import escape

from markdown_it import MarkdownIt

from loadtests.charts import ARM_COLOURS, PERCENTILE_DASHES, Series, bar_chart, line_chart
from loadtests.schema import Comparison, HistoryRow

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1600px;
       color: #222; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 8px; } h2 { font-size: 17px; margin: 28px 0 8px; }
table { border-collapse: collapse; margin: 6px 0; }
th, td { border: 1px solid #ddd; padding: 3px 7px; white-space: nowrap; }
th { background: #f4f4f4; white-space: normal; }
td:nth-last-child(-n+2) { white-space: normal; min-width: 12em; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.charts svg { border: 1px solid #eee; }
"""
# Tables (GitHub's pipe tables), and the reports' own text escaped rather than read as HTML.
_RENDERER = MarkdownIt("commonmark", {"html": False}).enable("table")


def _warmup_end(history: list[HistoryRow]) -> float | None:
    """When the measured window began: the first sample after the statistics reset."""
    return next((h[0] for h in history if (h[1] or 0) > 0), None)


def _charts(comparison: Comparison) -> str:
    history, arms = comparison.history, list(comparison.totals)
    colour = {arm: ARM_COLOURS.get(arm, "#333") for arm in arms}
    # Arms warm up for different lengths; shade up to the longest so no chart hides one.
    ends = [end for arm in arms if (end := _warmup_end(history[arm])) is not None]
    shade = max(ends, default=None)
    # Scale latency to the measured window: the login storm would flatten everything else
    # (warm-up values above the scale are drawn at its top).
    last = {arm: max((h[1] or 0 for h in history[arm]), default=0) for arm in arms}
    measured = [h for arm in arms for h in history[arm] if h[1] == last[arm]]
    y_top = max((h[6] or 0 for h in measured), default=1.0)
    p95_top = max((h[5] or 0 for h in measured), default=1.0)

    def line(arm: str, column: int, label: str = "", dashes: str = "") -> Series:
        points = [(h[0] or 0, h[column]) for h in history[arm]]
        return Series(label or arm, colour[arm], points, dashes)

    def chart(lines: list[Series], title: str, y_label: str, y_top: float | None = None) -> str:
        return line_chart(lines, title=title, y_label=y_label, y_top=y_top, shade_until=shade)

    def arms_chart(column: int, title: str, y_label: str, y_top: float | None = None) -> str:
        return chart([line(arm, column) for arm in arms], title, y_label, y_top)

    throughput = arms_chart(3, "Throughput over time (all operations)", "requests / s")
    users = arms_chart(2, "Users", "users")
    p95 = arms_chart(5, "p95 latency over time (rolling 10 s)", "ms", p95_top)
    percentiles = (("p50", 4), ("p95", 5), ("p99", 6))
    per_arm = [
        chart(
            [line(arm, col, f"{arm} {name}", PERCENTILE_DASHES[name]) for name, col in percentiles],
            f"{arm}: latency percentiles over time",
            "ms",
            y_top,
        )
        for arm in arms
    ]
    # Set-up rows (logins: seconds of argon2 each) would dwarf every other bar.
    least = comparison.settings.thresholds.min_requests
    operations = [
        row
        for row in comparison.operations
        if all((s := row.stats[arm]) and s.requests >= least for arm in arms)
    ]
    p95s = {arm: [getattr(row.stats[arm], "p95", None) for row in operations] for arm in arms}
    bars = bar_chart(
        [row.name for row in operations],
        [(arm, colour[arm], p95s[arm]) for arm in arms],
        title=f"p95 per operation (those with {least}+ requests per arm)",
        unit="ms",
    )
    return (
        f'<div class="charts">{throughput}{p95}</div><div class="charts">{"".join(per_arm)}</div>'
        f'<div class="charts">{bars}{users}</div>'
    )


def html_page(comparison: Comparison, markdown: str) -> str:
    """The Markdown report as HTML, with the charts."""
    body: str = _RENDERER.render(markdown)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Load comparison: {escape(comparison.verdict)}</title>"
        f"<style>{_STYLE}</style></head><body>\n"
        + body
        + f"<h2>Over time</h2>\n{_charts(comparison)}\n</body></html>\n"
    )
