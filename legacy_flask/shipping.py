"""Shipping quotes: ask the carrier service, blocking, as Flask apps do."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import requests
from flask import Blueprint, current_app
from urllib3.exceptions import HTTPError as ReadError
from urllib3.exceptions import ReadTimeoutError
from werkzeug.exceptions import BadGateway, GatewayTimeout, NotFound

from legacy_flask.auth import require_scope
from legacy_flask.db import get_session
from legacy_flask.orders import order_schema
from legacy_flask.schemas import QuoteQuerySchema, dump, load_args
from shop_core.models import MAX_ID, Order
from shop_core.money import MONEY_PATTERN, format_cents, parse_money

bp = Blueprint("shipping", __name__, url_prefix="/shipping")
query_schema = QuoteQuerySchema()

_MONEY = re.compile(MONEY_PATTERN)
_CURRENCY = re.compile(r"[A-Z]{3}")
_TOO_SLOW = "The carrier did not answer in time."
# A rate is a hundred bytes; an answer far larger is not one, and is not read further.
_MAX_ANSWER_BYTES = 64 * 1024


def _ask_carrier(payload: dict[str, Any]) -> Any:
    base_url: str | None = current_app.config["CARRIER_URL"]
    if not base_url:
        raise BadGateway("No carrier service is configured.")
    timeout: float = current_app.config["CARRIER_TIMEOUT_S"]
    started = time.monotonic()
    try:
        with (
            _carrier_session() as http,
            http.post(
                f"{base_url.rstrip('/')}/v1/rates",
                json=payload,
                timeout=timeout,
                # A redirect is an answer that is not a rate: 502, like any other. Followed, it
                # would send the order to wherever the carrier (or whoever answers for it) names.
                allow_redirects=False,
                stream=True,  # the body is read below, against the deadline
            ) as response,
        ):
            if not 200 <= response.status_code < 300:
                raise BadGateway(f"The carrier answered {response.status_code}.")
            content = _read_before(response, started + timeout)
    except (requests.Timeout, ReadTimeoutError):
        raise GatewayTimeout(_TOO_SLOW) from None
    except (requests.RequestException, ReadError):
        # requests reports a read that times out after the headers as a ConnectionError.
        if time.monotonic() - started >= timeout:
            raise GatewayTimeout(_TOO_SLOW) from None
        raise BadGateway("The carrier cannot be reached.") from None
    try:
        return json.loads(content)
    except (ValueError, RecursionError):
        raise BadGateway("The carrier's answer is not JSON.") from None


def _carrier_session() -> requests.Session:
    """A session, as `requests.post` makes one per call, that ignores the environment.

    requests reads HTTP_PROXY, HTTPS_PROXY, NO_PROXY, .netrc and REQUESTS_CA_BUNDLE at
    every call (`trust_env`): a proxy variable set for some other program would reroute
    the quotes, and only on this stack (v2's aiohttp reads none of them). The carrier's
    address is a setting, and the settings are the only configuration read.
    """
    session = requests.Session()
    session.trust_env = False
    return session


def _read_before(response: requests.Response, deadline: float) -> bytes:
    """The answer's body, whole before `deadline`, or GatewayTimeout.

    requests' timeout bounds each socket read, not the answer: a carrier that trickles
    its body a byte at a time would hold the pool thread for as long as it likes. Each
    read here waits at most for what is left of the deadline.
    """
    raw = response.raw
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    body = bytearray()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise GatewayTimeout(_TOO_SLOW)
        if sock is not None:
            sock.settimeout(remaining)
        chunk = raw.read1(_MAX_ANSWER_BYTES)  # whatever has arrived, without waiting for more
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > _MAX_ANSWER_BYTES:
            raise BadGateway("The carrier's answer is too large.")


def _valid_rate(answer: Any) -> dict[str, Any]:
    rate = answer if isinstance(answer, dict) else {}
    carrier, amount = rate.get("carrier"), rate.get("amount")
    currency, eta_days = rate.get("currency"), rate.get("eta_days")
    if not (
        isinstance(carrier, str)
        and carrier
        and isinstance(amount, str)
        and _MONEY.fullmatch(amount)
        and isinstance(currency, str)
        and _CURRENCY.fullmatch(currency)
        and isinstance(eta_days, int)
        and not isinstance(eta_days, bool)
        and eta_days >= 0
    ):
        raise BadGateway("The carrier's answer is not a rate.")
    # Money leaves this API with exactly two decimals, whatever the carrier wrote.
    return {
        "carrier": carrier,
        "amount": format_cents(parse_money(amount)),
        "currency": currency,
        "eta_days": eta_days,
    }


@bp.get("/quote")
@require_scope("read")
def quote() -> dict[str, Any]:
    """A shipping quote for an order, from the carrier service."""
    order_id: int = load_args(query_schema)["order_id"]
    session = get_session()
    order = session.get(Order, order_id) if 1 <= order_id <= MAX_ID else None
    if order is None:
        raise NotFound(f"Order {order_id} not found.")
    placed = dump(order_schema, order)
    # The carrier may take seconds: give the connection back to the pool meanwhile.
    session.close()
    rate = _valid_rate(
        _ask_carrier({"order_id": placed["id"], "items": placed["items"], "total": placed["total"]})
    )
    return {"order_id": order_id, **rate}
