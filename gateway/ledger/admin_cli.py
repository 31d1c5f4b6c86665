"""`gateway routes ...`: the admin API's changes from a shell, straight to the control database.

    gateway routes list [--json]
    gateway routes set ID [ID ...] STATE [--share PERCENT] [--reason R]
    gateway routes set --all-paired STATE [--share PERCENT] [--reason R]
    gateway routes announce ID [--deprecation DATE] [--sunset DATE] [--reason R]
    gateway routes migrate
    gateway routes report [--json] [--url URL] [--token T]   (asks a running gateway)

The pair (and so its ledger and control database) comes from the same settings and
`--pair` option as `gateway serve`. Every command first brings the control database's
tables up to date, as `gateway serve` does. Serving processes see a change within their
poll interval. Dates are ISO-8601 (`2027-01-31`, `2027-01-31T12:00:00+01:00`); without a
zone they are UTC; `none` clears one.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import socket
import sys
from dataclasses import replace
from datetime import UTC, datetime

from gateway.ledger.admin_models import GatewayRoute
from gateway.ledger.control import NoControlDatabase, required_control
from gateway.ledger.model import (
    FULL_SHARE,
    Ledger,
    RouteChange,
    RouteState,
    RouteStatus,
    StatusRefused,
)
from gateway.ledger.report_cli import add_report_command, run_report
from gateway.ledger.store import DatabaseStatuses, UnknownRoute, check_change
from gateway.ledger.store_migrate import upgrade_control_database
from gateway.pair import pair_source
from gateway.settings import GatewaySettings

CLEAR = "none"
_UNSET = object()


def _date(value: str) -> datetime | None:
    if value.lower() == CLEAR:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 date: {value!r}") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _share(value: str) -> int:
    try:
        share = int(value)
    except ValueError:
        share = -1
    if not 0 <= share <= FULL_SHARE:
        raise argparse.ArgumentTypeError(f"a share is a percentage, 0 to {FULL_SHARE}: {value!r}")
    return share


def _default_actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli {user}@{socket.gethostname()}"


def add_routes_commands(routes: argparse.ArgumentParser) -> None:
    routes.add_argument("--pair", metavar="IMPORT", help="a pair source (default: the example)")
    routes.add_argument(
        "--control-database-url", metavar="URL", help="default: GATEWAY_CONTROL_DATABASE_URL"
    )
    routes.add_argument("--actor", default=None, help="who the change is recorded as made by")
    commands = routes.add_subparsers(dest="routes_command", required=True)
    listing = commands.add_parser("list", help="every route of the ledger and its status")
    listing.add_argument("--json", action="store_true", help="as the admin API answers it")
    setting = commands.add_parser("set", help="move routes to another state")
    setting.add_argument("route_ids", nargs="*", metavar="ID")
    setting.add_argument("state", type=RouteState, choices=list(RouteState), metavar="STATE")
    setting.add_argument(
        "--all-paired", action="store_true", help="every route with an adapter, instead of IDs"
    )
    setting.add_argument(
        "--share",
        type=_share,
        default=None,
        metavar="PERCENT",
        help="0-100: of the safe requests shadowed (shadow), of the clients served by v2 "
        "(canary); kept when not given",
    )
    setting.add_argument("--reason", default="")
    announce = commands.add_parser("announce", help="set a route's deprecation and sunset dates")
    announce.add_argument("route_id", metavar="ID")
    announce.add_argument("--deprecation", type=_date, default=_UNSET, metavar="DATE")
    announce.add_argument("--sunset", type=_date, default=_UNSET, metavar="DATE")
    announce.add_argument("--reason", default="")
    commands.add_parser("migrate", help="bring the control database's tables up to date")
    add_report_command(commands)


def run_routes(args: argparse.Namespace) -> None:
    if args.routes_command == "report":
        # Reads a serving gateway's figures: no pair, no control database here.
        run_report(args)
        return
    given = {
        name: value
        for name, value in (
            ("pair", args.pair),
            ("control_database_url", args.control_database_url),
        )
        if value is not None
    }
    settings = GatewaySettings(**given)
    try:
        ledger, url = required_control(settings, pair_source(settings).build())
    except NoControlDatabase as exc:
        raise SystemExit(f"gateway routes: {exc}") from None
    upgrade_control_database(url)
    if args.routes_command == "migrate":
        print(f"control database up to date: {len(ledger.routes)} routes in the ledger")
        return
    statuses = DatabaseStatuses(ledger, url)
    try:
        asyncio.run(_run(args, statuses))
    except (UnknownRoute, StatusRefused) as exc:
        message = (
            f"no route {exc.args[0]!r} in the ledger" if isinstance(exc, UnknownRoute) else exc
        )
        raise SystemExit(f"gateway routes: {message}") from None
    finally:
        statuses.close()


async def _run(args: argparse.Namespace, statuses: DatabaseStatuses) -> None:
    await statuses.refresh()
    if args.routes_command == "list":
        _print_list(statuses, as_json=args.json)
        return
    actor = args.actor or _default_actor()
    if args.routes_command == "set":
        await _set(args, statuses, actor)
        return
    if args.deprecation is _UNSET and args.sunset is _UNSET:
        raise SystemExit("gateway routes announce: give --deprecation, --sunset or both")
    dates = {
        name: value
        for name, value in (("deprecation", args.deprecation), ("sunset", args.sunset))
        if value is not _UNSET
    }

    def announce(before: RouteStatus) -> RouteStatus:
        return replace(before, **dates)

    _print_change(await statuses.edit(args.route_id, announce, actor=actor, reason=args.reason))


def _chosen(args: argparse.Namespace, ledger: Ledger) -> list[str]:
    if args.all_paired == bool(args.route_ids):
        raise SystemExit("gateway routes set: give route IDs or --all-paired, not both")
    if args.all_paired:
        return [route.id for route in ledger.routes if route.adapter is not None]
    return list(dict.fromkeys(args.route_ids))


async def _set(args: argparse.Namespace, statuses: DatabaseStatuses, actor: str) -> None:
    state: RouteState = args.state
    share: int | None = args.share
    route_ids = _chosen(args, statuses.ledger)

    def move(before: RouteStatus) -> RouteStatus:
        return replace(before, state=state, share=before.share if share is None else share)

    # Every route is checked before the first is changed: a refusal changes none of them.
    for route_id in route_ids:
        check_change(statuses.ledger, route_id, move(statuses.current(route_id)))
    for route_id in route_ids:
        _print_change(await statuses.edit(route_id, move, actor=actor, reason=args.reason))


def _print_change(change: RouteChange) -> None:
    print(f"{change.route_id}: {_describe(change.before)} -> {_describe(change.after)}")


def _describe(status: RouteStatus) -> str:
    dates = [
        f"{name} {value.isoformat()}"
        for name, value in (("deprecation", status.deprecation), ("sunset", status.sunset))
        if value is not None
    ]
    share = [] if status.share == FULL_SHARE else [f"share {status.share}%"]
    return ", ".join([status.state.value, *share, *dates])


def _print_list(statuses: DatabaseStatuses, *, as_json: bool) -> None:
    routes = [
        GatewayRoute.of_route(route, statuses.current(route.id)) for route in statuses.ledger.routes
    ]
    if as_json:
        json.dump([route.model_dump(mode="json") for route in routes], sys.stdout, indent=2)
        print()
        return
    rows = [("ID", "STATE", "SHARE", "DEPRECATION", "SUNSET", "LEGACY", "V2")]
    for route in routes:
        rows.append(
            (
                route.id,
                route.state.value + ("" if route.adapter or route.v2 is None else " (no adapter)"),
                f"{route.share}%",
                "" if route.deprecation is None else route.deprecation.isoformat(),
                "" if route.sunset is None else route.sunset.isoformat(),
                f"{route.legacy.method} {route.legacy.rule}",
                "legacy-only: " + (route.legacy_only or "")
                if route.v2 is None
                else f"{route.v2.method} {route.v2.path}",
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
