"""Liveness of the legacy stack; the gateway's own /health checks the database."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("health", __name__)


@bp.get("/health")
def health() -> dict[str, str]:
    """Say that the legacy stack is up."""
    return {"status": "ok", "stack": "legacy"}
