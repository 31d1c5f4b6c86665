"""The command line: `gateway serve | db upgrade | seed | carrier-stub`, or `python -m gateway`."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from contextlib import ExitStack

import uvicorn

from gateway.app import create_app
from gateway.background_server import BackgroundServer
from gateway.carrier_stub import CarrierBehaviour, create_carrier_app
from gateway.observability import Exposition, Observability
from gateway.observability.metrics import MULTIPROCESS_ENV, multiprocess_directory
from gateway.serving import UVICORN_OPTIONS, configure_logging
from shop_core.database import create_sync_engine
from shop_core.migrate import upgrade
from shop_core.seed import seed_demo_data
from shop_core.settings import Settings

log = logging.getLogger("gateway")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="migrate, seed and serve both stacks")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    serve.add_argument("--no-migrate", dest="migrate", action="store_false")
    serve.add_argument("--no-seed", dest="seed", action="store_false")

    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_upgrade = db_commands.add_parser("upgrade", help="apply the Alembic migrations")
    db_upgrade.add_argument("--revision", default="head")

    commands.add_parser("seed", help="load the demo data into an empty database")

    stub = commands.add_parser("carrier-stub", help="serve the carrier stand-in")
    stub.add_argument("--host", default="127.0.0.1")
    stub.add_argument("--port", type=int, default=8900)
    stub.add_argument("--latency-ms", type=float, default=0.0)
    stub.add_argument("--failure-rate", type=float, default=0.0, help="share answered 503")
    stub.add_argument("--invalid-rate", type=float, default=0.0, help="share answered garbage")
    return parser


def _seed(settings: Settings) -> None:
    engine = create_sync_engine(settings.database_url, pool_size=1)
    try:
        seeded = seed_demo_data(engine, password=settings.demo_password)
    finally:
        engine.dispose()
    log.info("demo data %s", "loaded" if seeded else "already present, left alone")


def _serve(args: argparse.Namespace, settings: Settings) -> None:
    if args.migrate:
        upgrade(settings.database_url)
    if args.seed:
        _seed(settings)
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
            **UVICORN_OPTIONS,
        }
        if args.workers > 1:
            if settings.metrics_enabled:
                # prometheus-client's multiprocess mode: every worker writes its numbers into
                # this directory (named before the workers import prometheus_client), and
                # /metrics, wherever served, adds them all up.
                directory = stack.enter_context(multiprocess_directory())
                os.environ[MULTIPROCESS_ENV] = str(directory)
                _serve_metrics_port(
                    stack, settings, args.host, Exposition(multiprocess_dir=directory)
                )
            uvicorn.run("gateway.main:app", workers=args.workers, **common)
        else:
            app = create_app(settings)
            observability: Observability | None = getattr(app.state, "observability", None)
            if observability is not None and observability.exposition is not None:
                _serve_metrics_port(stack, settings, args.host, observability.exposition)
            uvicorn.run(app, **common)


def _serve_metrics_port(
    stack: ExitStack, settings: Settings, host: str, exposition: Exposition
) -> None:
    """/metrics on a port of its own (`GATEWAY_METRICS_PORT`), when one is set."""
    if settings.metrics_port is None:
        return
    stack.enter_context(BackgroundServer(exposition.app(), host=host, port=settings.metrics_port))
    log.info("metrics served on http://%s:%d/metrics", host, settings.metrics_port)


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
