"""The shop's own commands: `shop db upgrade | seed | carrier-stub`, or `python -m shop`.

Serving is the gateway's: `gateway serve` serves the shop when it is given no other apps.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import uvicorn

from gateway.ledger.store_migrate import upgrade_control_database
from gateway.serving import UVICORN_OPTIONS, configure_logging
from shop.carrier_stub import CallLog, CarrierBehaviour, create_carrier_app
from shop.demo import seed
from shop.settings import ShopSettings
from shop_core.migrate import upgrade


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shop", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_upgrade = db_commands.add_parser("upgrade", help="apply the Alembic migrations")
    db_upgrade.add_argument("--revision", default="head")

    commands.add_parser("seed", help="load the demo data into an empty database (development only)")

    stub = commands.add_parser("carrier-stub", help="serve the carrier stand-in")
    stub.add_argument("--host", default="127.0.0.1")
    stub.add_argument("--port", type=int, default=8900)
    stub.add_argument("--latency-ms", type=float, default=0.0)
    stub.add_argument("--failure-rate", type=float, default=0.0, help="share answered 503")
    stub.add_argument("--invalid-rate", type=float, default=0.0, help="share answered garbage")
    stub.add_argument(
        "--quota-rps", type=int, help="calls past this many in a second get 429 + Retry-After"
    )
    return parser


def _print_summary(calls: CallLog) -> None:
    print(f"carrier stub: {json.dumps(calls.summary())}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command == "carrier-stub":
        behaviour = CarrierBehaviour(
            args.latency_ms, args.failure_rate, args.invalid_rate, args.quota_rps
        )
        # What it saw goes to its log when it stops: how the server under test called it.
        stub = create_carrier_app(behaviour, on_stop=_print_summary)
        uvicorn.run(stub, host=args.host, port=args.port, log_level="warning", **UVICORN_OPTIONS)
        return
    settings = ShopSettings()
    configure_logging(settings)
    if args.command == "db":
        upgrade(settings.database_url, args.revision)
        # The gateway's route statuses live in the shop's database too (shop/app.py).
        upgrade_control_database(settings.database_url)
    elif args.command == "seed":
        seed(settings)
