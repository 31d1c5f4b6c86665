"""The command line: `gateway serve | db upgrade | seed | carrier-stub`, or `python -m gateway`."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
from collections.abc import Sequence
from contextlib import ExitStack

import uvicorn

from gateway.app import create_app
from gateway.background_server import BackgroundServer
from gateway.carrier_stub import CarrierBehaviour, create_carrier_app
from gateway.serving import UVICORN_OPTIONS, configure_logging, uvicorn_options
from shop_core.database import create_sync_engine
from shop_core.migrate import upgrade
from shop_core.seed import seed_demo_data
from shop_core.settings import Environment, Settings

log = logging.getLogger("gateway")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="migrate, seed and serve both stacks")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    serve.add_argument("--no-migrate", dest="migrate", action="store_false")
    serve.add_argument(
        "--seed",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="load the demo data into an empty database "
        "(default: in development only; refused in any other environment)",
    )

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
    return parser


def _refuse_seeding_outside_development(settings: Settings) -> None:
    # The demo users' password is public: their accounts must never exist where the
    # gateway serves real clients.
    if settings.env is not Environment.DEVELOPMENT:
        raise SystemExit(
            f"gateway: demo data is refused with GATEWAY_ENV={settings.env}: its users have "
            "a public password; seeding is for GATEWAY_ENV=development only"
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _seed(settings: Settings) -> None:
    _refuse_seeding_outside_development(settings)
    engine = create_sync_engine(settings.database_url, pool_size=1)
    try:
        seeded = seed_demo_data(engine, password=settings.demo_password.get_secret_value())
    finally:
        engine.dispose()
    log.info("demo data %s", "loaded" if seeded else "already present, left alone")


def _serve(args: argparse.Namespace, settings: Settings) -> None:
    development = settings.env is Environment.DEVELOPMENT
    seed = development if args.seed is None else args.seed
    if seed:
        # Before anything changes: a refused command leaves the database as it was.
        _refuse_seeding_outside_development(settings)
    if args.migrate:
        upgrade(settings.database_url)
    if seed:
        _seed(settings)
    if "secret_key" not in settings.model_fields_set:
        log.info("no GATEWAY_SECRET_KEY: tokens are signed with a random key of this server's")
        # Worker processes read their settings afresh: this is how they share the key
        # (each would draw a key of its own, and refuse the other workers' tokens).
        os.environ["GATEWAY_SECRET_KEY"] = settings.secret_key.get_secret_value()
    if development and not _is_loopback(args.host):
        log.warning(
            "GATEWAY_ENV=development on %s: debug settings and the demo users' public "
            "password are allowed; use GATEWAY_ENV=production for a public address",
            args.host,
        )
    with ExitStack() as stack:
        if settings.carrier_url is None:
            stub = stack.enter_context(BackgroundServer(create_carrier_app()))
            log.info("no GATEWAY_CARRIER_URL: carrier stub started on %s", stub.url)
            settings = settings.model_copy(update={"carrier_url": stub.url})
            # Worker processes read their settings afresh; this is how they learn the URL.
            os.environ["GATEWAY_CARRIER_URL"] = stub.url
        common = {
            "host": args.host,
            "port": args.port,
            "log_level": settings.log_level.lower(),
            **uvicorn_options(settings),
        }
        if args.workers > 1:
            uvicorn.run("gateway.main:app", workers=args.workers, **common)
        else:
            uvicorn.run(create_app(settings), **common)


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command == "carrier-stub":
        behaviour = CarrierBehaviour(args.latency_ms, args.failure_rate, args.invalid_rate)
        uvicorn.run(
            create_carrier_app(behaviour),
            host=args.host,
            port=args.port,
            log_level="warning",
            **UVICORN_OPTIONS,
        )
        return
    settings = Settings()
    configure_logging(settings)
    if args.command == "serve":
        _serve(args, settings)
    elif args.command == "db":
        upgrade(settings.database_url, args.revision)
    elif args.command == "seed":
        _seed(settings)
