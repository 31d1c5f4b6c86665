"""What `python -m loadtests.bench` measures: the servers, the loads, the pairs, the targets.

A load is one wrk run against one server (method, path, token, body, connections); a pair
is the ratio of two loads' median req/s (or of one load to an ideal rate). Loads shared by
several pairs run once per round. The targets are those of issue 9.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from loadtests.servers import GATEWAY_ON_V2

# Servers the bench can start: the gateway as load runs
# serve it (metrics on, access log off), the same with every paired route served by v2,
# the gateway with its layers all off and all on,
# the two apps alone under uvicorn, and the Flask app under gunicorn.
GATEWAY = "gateway"
ON_V2 = "gateway, every paired route on v2"
LAYERS_OFF = "gateway, metrics and access log off"
LAYERS_ON = "gateway, metrics and access log on"
V2_ALONE = "v2 alone (uvicorn)"
A2WSGI = "legacy under bare a2wsgi (uvicorn)"
GUNICORN_SYNC = "legacy under gunicorn, 1 sync worker"
GUNICORN_GTHREAD = "legacy under gunicorn, 1 gthread worker"

# Where each server serves each stack (the apps alone serve at their root).
PREFIXES = {
    GATEWAY: {"legacy": "/legacy", "v2": "/v2"},
    ON_V2: {"legacy": "/legacy"},
    LAYERS_OFF: {"legacy": "/legacy", "v2": "/v2"},
    LAYERS_ON: {"legacy": "/legacy", "v2": "/v2"},
    V2_ALONE: {"v2": ""},
    A2WSGI: {"legacy": ""},
    GUNICORN_SYNC: {"legacy": "/legacy"},
    GUNICORN_GTHREAD: {"legacy": "/legacy"},
}

# How each is started (a kind of `servers.start_server`, its arguments, its environment).
_SHOP_LEGACY = ("shop.legacy_wsgi:app",)
_AT_LEGACY = {"SCRIPT_NAME": "/legacy"}
SERVERS: dict[str, tuple[str, tuple[str, ...], dict[str, str]]] = {
    GATEWAY: ("gateway", (), {}),
    ON_V2: (GATEWAY_ON_V2, (), {}),
    LAYERS_OFF: ("gateway", (), {"GATEWAY_METRICS_ENABLED": "false"}),
    LAYERS_ON: ("gateway", (), {"GATEWAY_METRICS_ENABLED": "true", "GATEWAY_LOG_LEVEL": "INFO"}),
    V2_ALONE: ("uvicorn", ("loadtests.bare_apps:v2_alone",), {}),
    A2WSGI: ("uvicorn", ("loadtests.bare_apps:legacy_alone",), {}),
    GUNICORN_SYNC: ("gunicorn", _SHOP_LEGACY, _AT_LEGACY),
    # As many threads as the gateway's legacy pool has by default.
    GUNICORN_GTHREAD: (
        "gunicorn",
        ("--worker-class", "gthread", "--threads", "10", *_SHOP_LEGACY),
        _AT_LEGACY,
    ),
}


def ready_path(server: str) -> str:
    """The shop's legacy health route where the server has one at /legacy, else /health."""
    return "/legacy/health" if PREFIXES[server].get("legacy") == "/legacy" else "/health"


QUOTE_CONNECTIONS = 100
# 100 connections each waiting 50 ms on the carrier: no server can answer more.
CARRIER_LATENCY_MS = 50.0
QUOTE_IDEAL_RPS = QUOTE_CONNECTIONS / (CARRIER_LATENCY_MS / 1000)
ORDER_BODY = json.dumps({"customer_id": 1, "items": [{"product_id": 1, "quantity": 1}]})


@dataclass(frozen=True)
class Load:
    server: str
    stack: str
    method: str
    # Relative to the stack's prefix; `{order}` is the id of an order the bench placed.
    path: str
    token: bool = False
    body: str | None = None
    # None: the run's --connections.
    connections: int | None = None

    def url_path(self, order_id: int) -> str:
        return PREFIXES[self.server][self.stack] + self.path.format(order=order_id)

    def label(self) -> str:
        return f"{self.stack} {self.method} {self.path.replace('{order}', '{id}')} on {self.server}"


@dataclass(frozen=True)
class Pair:
    name: str
    title: str
    numerator: Load
    # A load, or a fixed rate (an ideal) in req/s.
    denominator: Load | float
    # Minimum ratio by database kind ("sqlite", "postgresql"); none: reported only.
    targets: dict[str, float] = field(default_factory=dict)

    def loads(self) -> list[Load]:
        loads = [self.numerator]
        if isinstance(self.denominator, Load):
            loads.append(self.denominator)
        return loads


def _both(target: float) -> dict[str, float]:
    return {"sqlite": target, "postgresql": target}


def _stacks(
    path_v2: str, path_legacy: str, *, token: bool = False, body: str | None = None
) -> tuple[Load, Load]:
    method = "POST" if body else "GET"
    return (
        Load(GATEWAY, "v2", method, path_v2, token, body),
        Load(GATEWAY, "legacy", method, path_legacy, token, body),
    )


def _v2_over_legacy(name: str, title: str, loads: tuple[Load, Load], **targets: float) -> Pair:
    return Pair(name, title, loads[0], loads[1], dict(targets))


PRODUCT_V2, PRODUCT_LEGACY = _stacks("/products/1", "/products/1")
LIST_V2, LIST_LEGACY = _stacks("/products?limit=20", "/products?per_page=20")
# A legacy client after the cutover: the same legacy URLs, answered by v2 through the
# adapters. Over legacy: what the client gains; over v2: what the adapters cost.
PRODUCT_ON_V2 = Load(ON_V2, "legacy", "GET", "/products/1")
LIST_ON_V2 = Load(ON_V2, "legacy", "GET", "/products?per_page=20")
QUOTE_V2, QUOTE_LEGACY = (
    Load(GATEWAY, stack, "GET", "/shipping/quote?order_id={order}", True, None, QUOTE_CONNECTIONS)
    for stack in ("v2", "legacy")
)


def _legacy_product(server: str) -> Load:
    return Load(server, "legacy", "GET", "/products/1")


def _v2_product(server: str) -> Load:
    return Load(server, "v2", "GET", "/products/1")


PAIRS = [
    _v2_over_legacy(
        "products-id", "v2 / legacy, GET /products/{id}", (PRODUCT_V2, PRODUCT_LEGACY),
        sqlite=3.0, postgresql=3.0,
    ),
    _v2_over_legacy(
        "customers-id", "v2 / legacy, GET /customers/{id}",
        _stacks("/customers/1", "/customers/1", token=True), sqlite=3.0, postgresql=3.0,
    ),
    _v2_over_legacy(
        "orders-id", "v2 / legacy, GET /orders/{id}",
        _stacks("/orders/{order}", "/orders/{order}", token=True), sqlite=3.0, postgresql=3.0,
    ),
    _v2_over_legacy(
        "products-list", "v2 / legacy, GET /products?limit=20 (legacy ?per_page=20)",
        (LIST_V2, LIST_LEGACY), sqlite=2.0, postgresql=2.0,
    ),
    _v2_over_legacy(
        "orders-post", "v2 / legacy, POST /orders",
        _stacks("/orders", "/orders", token=True, body=ORDER_BODY), sqlite=1.0, postgresql=1.5,
    ),
    _v2_over_legacy(
        "quote", f"v2 / legacy, quote at {QUOTE_CONNECTIONS} connections, 50 ms carrier",
        (QUOTE_V2, QUOTE_LEGACY),
    ),
    Pair(
        "quote-ideal", f"v2 quote / ideal {QUOTE_IDEAL_RPS:,.0f}/s", QUOTE_V2, QUOTE_IDEAL_RPS,
        _both(0.7),
    ),
    Pair(
        "legacy-on-v2-legacy", "legacy-on-v2 / legacy, GET /products/{id}",
        PRODUCT_ON_V2, PRODUCT_LEGACY,
    ),
    Pair(
        "legacy-on-v2-v2", "legacy-on-v2 / v2, GET /products/{id} (the adapter's cost)",
        PRODUCT_ON_V2, PRODUCT_V2,
    ),
    Pair(
        "legacy-on-v2-legacy-list", "legacy-on-v2 / legacy, GET /products?per_page=20",
        LIST_ON_V2, LIST_LEGACY,
    ),
    Pair(
        "legacy-on-v2-v2-list",
        "legacy-on-v2 / v2, GET /products?per_page=20 (v2 ?limit=20; the adapter's cost)",
        LIST_ON_V2, LIST_V2,
    ),
    Pair(
        "tax-v2", "gateway tax, v2: via gateway / alone", PRODUCT_V2, _v2_product(V2_ALONE),
        _both(0.9),
    ),
    Pair(
        "tax-legacy-a2wsgi", "gateway tax, legacy: via gateway / bare a2wsgi", PRODUCT_LEGACY,
        _legacy_product(A2WSGI), _both(0.9),
    ),
    Pair(
        "tax-legacy-sync", "legacy: via gateway / gunicorn 1 sync worker", PRODUCT_LEGACY,
        _legacy_product(GUNICORN_SYNC), _both(1.0),
    ),
    Pair(
        "tax-legacy-gthread", "legacy: via gateway / gunicorn gthread", PRODUCT_LEGACY,
        _legacy_product(GUNICORN_GTHREAD),
    ),
    Pair(
        "layers-v2", "gateway layers, v2: metrics and access log on / off",
        _v2_product(LAYERS_ON), _v2_product(LAYERS_OFF),
    ),
    Pair(
        "layers-legacy", "gateway layers, legacy: metrics and access log on / off",
        _legacy_product(LAYERS_ON), _legacy_product(LAYERS_OFF),
    ),
]  # fmt: skip
PAIR_NAMES = [pair.name for pair in PAIRS]


def select(names: list[str] | None) -> list[Pair]:
    if not names:
        return list(PAIRS)
    wanted = set(names)
    return [pair for pair in PAIRS if pair.name in wanted]


def loads_of(pairs: list[Pair]) -> list[Load]:
    """Every load the pairs need, once each, in a stable order."""
    return list(dict.fromkeys(load for pair in pairs for load in pair.loads()))


def servers_of(pairs: list[Pair]) -> list[str]:
    """The servers the pairs' loads run on, the gateway first (it issues the token)."""
    return list(dict.fromkeys([GATEWAY] + [load.server for load in loads_of(pairs)]))


def groups(pairs: list[Pair], most_servers: int) -> list[list[Pair]]:
    """The pairs in groups that each need at most `most_servers` servers (one group when
    they all fit): each group's servers run, and are stopped, before the next group's.

    For PostgreSQL: every server keeps its pooled connections between loads, and seven of
    them hold more than a server's default 100. A pair's two loads are always in one group,
    so each ratio still compares loads of the same rounds.
    """
    found: list[list[Pair]] = []
    for pair in pairs:
        for group in found:
            if len(servers_of([*group, pair])) <= most_servers:
                group.append(pair)
                break
        else:
            found.append([pair])
    return found
