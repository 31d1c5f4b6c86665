"""A small route ledger over the notes pair, for the control plane's tests.

`notes.list` and `notes.read` have an adapter (the notes pair's paths are the same on both
sides, so it hands the request to v2 as it is); `notes.create` is paired but has none, so
it cannot be served by v2; `slow` is legacy-only. `NotesLedgerPair` is a pair source for
`gateway serve --pair` and `gateway routes --pair`.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.ledger.model import Ledger, LedgerRoute
from gateway.pair import AppPair, ImportedPair
from gateway.settings import GatewaySettings

NOTES_PAIR_OPTIONS = {
    "legacy_app": "tests.notes_pair.legacy:create_app",
    "v2_app": "tests.notes_pair.v2:app",
    "legacy_errors": "tests.notes_pair.errors:legacy_error",
    "v2_errors": "tests.notes_pair.errors:v2_error",
}


async def same_path(
    scope: Scope, receive: Receive, send: Send, *, params: Mapping[str, Any], v2: ASGIApp
) -> None:
    await v2(scope, receive, send)


LEDGER = Ledger(
    routes=(
        LedgerRoute("notes.list", "GET", "/notes", "GET", "/notes", adapter=same_path),
        LedgerRoute(
            "notes.read",
            "GET",
            "/notes/<int:note_id>",
            "GET",
            "/notes/{note_id}",
            adapter=same_path,
            deprecation_docs="https://example.com/notes-v2",
        ),
        LedgerRoute("notes.create", "POST", "/notes", "POST", "/notes"),
        LedgerRoute("slow", "GET", "/slow", legacy_only="a test route, never moved"),
    )
)


def notes_pair(control_database_url: str | None = None) -> AppPair:
    """The notes pair with the ledger above."""
    pair = ImportedPair(GatewaySettings(**NOTES_PAIR_OPTIONS)).build()
    return replace(pair, ledger=LEDGER, control_database_url=control_database_url)


class NotesLedgerPair:
    """The notes pair with its ledger, as `--pair tests.gateway.ledger_pair:NotesLedgerPair`
    names it; its control database is `GATEWAY_CONTROL_DATABASE_URL`."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings

    def prepare(self) -> AbstractContextManager[None]:
        return nullcontext()

    def build(self) -> AppPair:
        return notes_pair()
