"""`gateway routes report [--json]`: the dashboard's readiness table in a terminal.

The figures (requests per implementation, latencies, shadow parity) live in the memory of
the serving processes, so the command does not compute them: it asks a running gateway's
`GET /_gateway/readiness` over HTTP with the admin token (`--token`, else
`GATEWAY_ADMIN_TOKEN`) and prints what the dashboard shows. Behind a load balancer each
call reaches one worker, and shows that worker's figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Final

import requests
from pydantic import ValidationError

from gateway.ledger.readiness import Implementation, ReadinessReport, RouteReadiness
from gateway.settings import GatewaySettings

DEFAULT_URL: Final = "http://127.0.0.1:8000"
TIMEOUT_S: Final = 10.0
HELP: Final = (
    "the readiness table of a RUNNING gateway (it asks GET /_gateway/readiness over HTTP: "
    "the figures live in the serving process)"
)


def add_report_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = commands.add_parser("report", help=HELP, description=HELP + ".")
    report.add_argument(
        "--url", default=DEFAULT_URL, help=f"the gateway's base URL (default {DEFAULT_URL})"
    )
    report.add_argument(
        "--token", default=None, help="the admin token (default: GATEWAY_ADMIN_TOKEN)"
    )
    report.add_argument("--json", action="store_true", help="as GET /_gateway/readiness answers")


def run_report(args: argparse.Namespace) -> None:
    token = args.token
    if token is None:
        secret = GatewaySettings().admin_token
        token = None if secret is None else secret.get_secret_value()
    if not token:
        raise SystemExit("gateway routes report: give --token or set GATEWAY_ADMIN_TOKEN")
    url = args.url.rstrip("/") + "/_gateway/readiness"
    try:
        answer = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT_S)
    except requests.RequestException as exc:
        raise SystemExit(f"gateway routes report: {url}: {exc}") from None
    if answer.status_code != 200:
        raise SystemExit(
            f"gateway routes report: {url} answered {answer.status_code}"
            + (" (not this admin token?)" if answer.status_code == 401 else "")
            + (
                " (no admin API: is GATEWAY_ADMIN_TOKEN set there?)"
                if answer.status_code == 404
                else ""
            )
        )
    try:
        report = ReadinessReport.model_validate_json(answer.content)
    except ValidationError as exc:
        raise SystemExit(
            f"gateway routes report: {url} answered no readiness report: {exc}"
        ) from None
    if args.json:
        json.dump(report.model_dump(mode="json"), sys.stdout, indent=2)
        print()
        return
    print(table(report))


def table(report: ReadinessReport) -> str:
    """One line per route, then its implementations and mismatches indented below it."""
    rows = [("ID", "STATE", "SHARE", "PARITY", "COMPARED", "VERDICT")]
    details: dict[str, list[str]] = {}
    for route in report.routes:
        shadow = route.shadow
        rows.append(
            (
                route.id,
                route.state.value,
                f"{route.share}%",
                "-" if shadow is None or shadow.parity is None else f"{shadow.parity:.2%}",
                "-" if shadow is None else str(shadow.compared),
                f"{route.verdict.value}: {route.why}",
            )
        )
        details[route.id] = _details(route)
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = []
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        lines.extend("    " + detail for detail in details.get(row[0], ()))
    lines.append(
        f"(this process's figures over the last {report.policy.window_s:g} s; "
        f"thresholds: {report.policy.min_compared} comparisons, parity "
        f"{report.policy.min_parity:.2%}, 5xx rate {report.policy.max_error_rate:.2%})"
    )
    return "\n".join(lines)


def _details(route: RouteReadiness) -> list[str]:
    lines = [_served(i) for i in route.implementations]
    dates = [
        f"{name} {value.isoformat()}"
        for name, value in (("deprecation", route.deprecation), ("sunset", route.sunset))
        if value is not None
    ]
    if dates:
        lines.append("announced: " + ", ".join(dates))
    for mismatch in route.mismatches:
        for difference in mismatch.differences:
            lines.append(
                f"mismatch {mismatch.request_id} {mismatch.method} {mismatch.path} "
                f"{difference.get('pointer') or difference.get('part')}: "
                f"{json.dumps(difference.get('primary'))} / {json.dumps(difference.get('shadow'))}"
            )
    return lines


def _served(figures: Implementation) -> str:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f} ms"

    return (
        f"{figures.served_by}: {figures.requests} requests ({figures.share:.0%}), "
        f"p50 {ms(figures.p50_ms)}, p95 {ms(figures.p95_ms)}, 5xx {figures.error_rate:.2%}"
    )
