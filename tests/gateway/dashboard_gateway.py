"""A gateway over the notes pair with its ledger and admin token, for the dashboard's tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests

from gateway.app import create_gateway
from gateway.background_server import BackgroundServer
from gateway.settings import GatewaySettings
from tests.gateway.control_database import control_database
from tests.gateway.ledger_pair import LEDGER, NOTES_PAIR_OPTIONS, notes_pair

TOKEN = "an-admin-token-" + "d" * 32


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[str]:
    with control_database("sqlite", tmp_path) as url:
        settings = GatewaySettings(
            **NOTES_PAIR_OPTIONS, log_level="WARNING", admin_token=TOKEN, ready_min_compared=3
        )
        pair = replace(notes_pair(url), ledger=LEDGER)
        with BackgroundServer(create_gateway(settings, pair), settings=settings) as server:
            yield server.url


def same_note_on_both_sides(base: str) -> dict[str, Any]:
    """The notes pair's two sides keep a database each: the same note written to both."""
    note: dict[str, Any] = requests.post(
        f"{base}/legacy/notes", json={"text": "n"}, timeout=10
    ).json()
    twin = requests.post(f"{base}/v2/notes", json={"text": "n"}, timeout=10).json()
    assert twin["id"] == note["id"]
    return note
