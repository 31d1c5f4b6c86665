"""The command line: `gateway serve`, or `python -m gateway serve`.

    gateway serve --legacy myapp.legacy:create_app --v2 myapp.api:app

serves a team's two apps; without `--legacy` and `--v2` it serves the pair `GATEWAY_PAIR`
names (by default the worked example, the shop). `gateway routes ...` reads and changes
the states of a pair's route ledger (gateway/ledger/admin_cli.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Sequence
from contextlib import ExitStack
from typing import Any

import uvicorn

from gateway.app import create_gateway, error_formats
from gateway.background_server import BackgroundServer
from gateway.ledger.admin_cli import add_routes_commands, run_routes
from gateway.ledger.control import NoControlDatabase, prepare_control_database
from gateway.observability import Exposition, Observability
from gateway.observability.metrics import MULTIPROCESS_ENV, multiprocess_directory
from gateway.pair import pair_source
from gateway.serving import configure_logging, settle_heap, uvicorn_options
from gateway.settings import GatewaySettings

log = logging.getLogger("gateway")

# Command-line options that are settings: given, they win over the environment, and
# `--workers N` processes learn them through it.
_SETTINGS_OPTIONS = {
    "legacy": "legacy_app",
    "v2": "v2_app",
    "legacy_prefix": "legacy_prefix",
    "v2_prefix": "v2_prefix",
    "legacy_errors": "legacy_errors",
    "v2_errors": "v2_errors",
    "pair": "pair",
}


def _check(value: str) -> tuple[str, str]:
    name, separator, spec = value.partition("=")
    if not separator or not name or not spec:
        raise argparse.ArgumentTypeError(f"expected NAME=module:function, not {value!r}")
    return name, spec


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve a legacy WSGI app and a v2 ASGI app")
    serve.add_argument("--legacy", metavar="IMPORT", help="the Flask (WSGI) app or its factory")
    serve.add_argument("--v2", metavar="IMPORT", help="the FastAPI (ASGI) app or its factory")
    serve.add_argument("--legacy-prefix", metavar="PATH", help="default /legacy")
    serve.add_argument("--v2-prefix", metavar="PATH", help="default /v2")
    serve.add_argument(
        "--legacy-errors", metavar="IMPORT", help="format of the gateway's errors on legacy"
    )
    serve.add_argument("--v2-errors", metavar="IMPORT", help="format of its errors on v2")
    serve.add_argument(
        "--check",
        metavar="NAME=IMPORT",
        type=_check,
        action="append",
        default=[],
        help="a readiness check for /health (repeatable)",
    )
    serve.add_argument("--pair", metavar="IMPORT", help="a pair source (default: the example)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    routes = commands.add_parser("routes", help="the route ledger's states (gateway/ledger)")
    add_routes_commands(routes)
    return parser


def _settings(args: argparse.Namespace) -> GatewaySettings:
    given: dict[str, Any] = {
        setting: getattr(args, option)
        for option, setting in _SETTINGS_OPTIONS.items()
        if getattr(args, option) is not None
    }
    if args.check:
        given["checks"] = dict(args.check)
    settings = GatewaySettings(**given)
    # Worker processes read their settings afresh: this is how they get the same ones.
    for setting, value in given.items():
        os.environ[f"GATEWAY_{setting.upper()}"] = (
            json.dumps(value) if isinstance(value, dict) else value
        )
    return settings


def _serve(args: argparse.Namespace) -> None:
    # Every process serving learns how many serve (GATEWAY_WORKERS), so that a pair can
    # share a budget between them (the shop: its carrier quota).
    os.environ["GATEWAY_WORKERS"] = str(args.workers)
    settings = _settings(args)
    configure_logging(settings)
    source = pair_source(settings)
    with source.prepare(), ExitStack() as stack:
        if args.workers > 1 and settings.metrics_enabled:
            # prometheus-client's multiprocess mode: every worker writes its numbers into
            # this directory (named before the workers import prometheus_client), and
            # /metrics, wherever served, adds them all up.
            directory = stack.enter_context(multiprocess_directory())
            os.environ[MULTIPROCESS_ENV] = str(directory)
            settings = settings.model_copy(update={"metrics_multiprocess_dir": directory})
        pair = source.build()
        try:
            prepare_control_database(settings, pair)
        except NoControlDatabase as exc:
            raise SystemExit(f"gateway serve: {exc}") from None
        options = {
            "host": args.host,
            "port": args.port,
            "log_level": settings.log_level.lower(),
            **uvicorn_options(settings, error_formats(settings, pair)),
        }
        if args.workers > 1:
            if settings.metrics_multiprocess_dir is not None:
                exposition = Exposition(multiprocess_dir=settings.metrics_multiprocess_dir)
                _serve_metrics_port(stack, settings, args.host, exposition)
            uvicorn.run("gateway.main:app", workers=args.workers, **options)
            return
        app = create_gateway(settings, pair)
        observability: Observability = app.state.observability
        if observability.exposition is not None:
            _serve_metrics_port(stack, settings, args.host, observability.exposition)
        settle_heap()
        uvicorn.run(app, **options)


def _serve_metrics_port(
    stack: ExitStack, settings: GatewaySettings, host: str, exposition: Exposition
) -> None:
    """/metrics on a port of its own (`GATEWAY_METRICS_PORT`), when one is set."""
    if settings.metrics_port is None:
        return
    stack.enter_context(BackgroundServer(exposition.app(), host=host, port=settings.metrics_port))
    log.info("metrics served on http://%s:%d/metrics", host, settings.metrics_port)


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        _serve(args)
    elif args.command == "routes":
        run_routes(args)
