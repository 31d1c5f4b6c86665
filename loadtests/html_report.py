"""`comparison.html`: one self-contained page (inline CSS and SVG, nothing fetched)."""

from __future__ import annotations

from html import escape
from pathlib import Path

from loadtests.charts import ARM_COLOURS, PERCENTILE_DASHES, Series, bar_chart, line_chart
from loadtests.formats import times
from loadtests.report import (
    PAIR,
    STAT_COLUMNS,
    TOTALS_HEAD,
    failure_lines,
    load_notes,
    settings_lines,
    stat,
    steps_note,
    steps_text,
    totals_rows,
)
from loadtests.schema import Comparison, HistoryRow
from loadtests.shadow_report import SHADOW, SHADOW_HEAD, mismatch_lines, shadow_rows, shadow_summary

NEUTRAL_BAND = 0.05
_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1320px;
       color: #222; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 8px; } h2 { font-size: 17px; margin: 28px 0 8px; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 4px; color: #fff; }
.pass { background: #2a7d2e; } .fail { background: #c62828; } .not-judged { background: #777; }
.note { border-left: 4px solid #e0a800; background: #fff8e1; padding: 8px 12px; }
.ok { border-left: 4px solid #2a7d2e; background: #eef7ee; padding: 8px 12px; }
ul.settings { margin: 0; padding-left: 18px; color: #444; }
table { border-collapse: collapse; margin: 6px 0; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: right; white-space: nowrap; }
th { background: #f4f4f4; } td.name { text-align: left; font-family: monospace; }
td.better { background: #e3f3e3; } td.worse { background: #fbe3e3; }
td.reasons { text-align: left; white-space: normal; width: 300px; font-size: 12px; }
td.arm { text-align: left; font-weight: 600; }
td.wrap { text-align: left; white-space: normal; max-width: 280px; font-size: 12px; }
table.ops tr.first td { border-top: 2px solid #bbb; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.charts svg { border: 1px solid #eee; }
.foot { color: #555; font-size: 13px; }
"""


def _ratio_cell(value: float | None, lower_is_better: bool, attrs: str = "") -> str:
    css = ""
    # Within 5 % is a draw: not worth a colour.
    if value is not None and abs(value - 1) >= NEUTRAL_BAND:
        better = value < 1 if lower_is_better else value > 1
        css = ' class="better"' if better else ' class="worse"'
    return f"<td{css}{attrs}>{times(value)}</td>"


def _row(cells: list[str], tag: str = "td") -> str:
    return f"<tr><{tag}>" + f"</{tag}><{tag}>".join(cells) + f"</{tag}></tr>"


def _totals(comparison: Comparison) -> str:
    rows = [
        f'<tr><td class="name">{cells[0]}</td>'
        + "".join(f"<td>{escape(cell)}</td>" for cell in cells[1:-2])
        + "".join(f'<td class="wrap">{escape(cell)}</td>' for cell in cells[-2:])
        + "</tr>"
        for cells in totals_rows(comparison)
    ]
    return "<table>" + _row(TOTALS_HEAD, "th") + "".join(rows) + "</table>"


def _operations(comparison: Comparison) -> str:
    """One block of rows per operation, one row per arm, the v2/legacy ratios beside it."""
    arms = list(comparison.totals)
    head = ["operation", "arm", "requests", "failures", "req/s", "p50 ms", "p95 ms", "p99 ms"]
    head += [f"{PAIR} p50", f"{PAIR} p95", f"{PAIR} req/s", "verdict"]
    rows = []
    span = f' rowspan="{len(arms)}"'
    for row in comparison.operations:
        r = row.ratios[PAIR]
        shared = [
            _ratio_cell(r.p50 if r else None, True, span),
            _ratio_cell(r.p95 if r else None, True, span),
            _ratio_cell(r.rps if r else None, False, span),
            f'<td class="reasons"{span}><span class="badge {row.verdict.replace(" ", "-")}">'
            f"{row.verdict}</span> {escape('; '.join(row.reasons))}</td>",
        ]
        for index, arm in enumerate(arms):
            cells = [f'<td class="name"{span}>{escape(row.name)}</td>'] if index == 0 else []
            cells.append(f'<td class="arm" style="color:{ARM_COLOURS.get(arm, "#333")}">{arm}</td>')
            cells += [f"<td>{stat(row.stats[arm], m, d)}</td>" for m, d in STAT_COLUMNS]
            cells += shared if index == 0 else []
            css = ' class="first"' if index == 0 else ""
            rows.append(f"<tr{css}>" + "".join(cells) + "</tr>")
    return f'<table class="ops">{_row(head, "th")}{"".join(rows)}</table>'


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


def _list(items: list[str], attrs: str = "") -> str:
    return f"<ul{attrs}>" + "".join(f"<li>{escape(item)}</li>" for item in items) + "</ul>"


def _steps(comparison: Comparison) -> str:
    steps = [f"{arm}: {steps_text(summary)}" for arm, summary in comparison.arms.items()]
    note = steps_note(comparison.settings)
    caveat = f'<p class="note">{escape(note)}</p>' if note else ""
    return "<h2>Ramp steps</h2>" + _list(steps) + caveat


def _shadow(comparison: Comparison) -> str:
    rows = shadow_rows(comparison)
    if not rows:
        return ""
    body = "".join(
        f'<tr><td class="name">{escape(row[0])}</td>'
        + "".join(f"<td>{escape(cell)}</td>" for cell in row[1:])
        + "</tr>"
        for row in rows
    )
    parts = [f"<h2>Shadow results ({SHADOW})</h2>", "<table>" + _row(SHADOW_HEAD, "th") + body]
    parts.append("</table>")
    if text := shadow_summary(comparison):
        parts.append(f"<p>{escape(text)}</p>")
    if mismatches := mismatch_lines(comparison):
        items = "".join(f"<li><code>{escape(line)}</code></li>" for line in mismatches)
        parts.append(f"<p>Latest mismatches:</p><ul>{items}</ul>")
    return "".join(parts)


def write_html(comparison: Comparison, path: Path) -> None:
    verdict = comparison.verdict
    notes = load_notes(comparison)
    check = (
        '<div class="note">' + "<br>".join(escape(n).replace("**", "") for n in notes) + "</div>"
        if notes
        else '<div class="ok">Every arm got the planned load; no load generator warnings.</div>'
    )
    links = " · ".join(
        f'{arm}: <a href="{s.files["html"]}">Locust report</a>, '
        f'<a href="{s.files["stats_csv"]}">stats CSV</a>, '
        f'<a href="{s.files["history_csv"]}">history CSV</a>'
        for arm, s in comparison.arms.items()
    )
    body = [
        f'<h1>Legacy vs v2 under load <span class="badge {verdict}">{verdict.upper()}</span></h1>',
        _list(settings_lines(comparison), ' class="settings"'),
        "<h2>Load check</h2>",
        check,
        "<h2>Totals</h2>",
        _totals(comparison),
        "<h2>Per operation</h2>",
        _operations(comparison),
        _shadow(comparison),
        "<h2>Over time</h2>",
        _charts(comparison),
        _steps(comparison) if comparison.mode == "ramp" else "",
        "<h2>Failures</h2>" + _list(failures) if (failures := failure_lines(comparison)) else "",
        f"<h2>Raw data</h2><p>{links}</p>",
        '<p class="foot">Ratios are v2 divided by legacy: below 1x is faster for latency, above '
        "1x is more throughput. Green is better for v2, red worse. Locust rounds times under "
        "100 ms to whole milliseconds, so small times differ in steps of 1 ms. Numbers from "
        "one run on a shared machine are noisy: compare arms within a run, not across runs.</p>",
    ]
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Load comparison: {verdict}</title><style>{_STYLE}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )
    path.write_text(page)
