"""The stack's own liveness check (the gateway's /health is the one that asks the database)."""

from __future__ import annotations

from fastapi import APIRouter

from v2_fastapi.schemas.health import Health

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> Health:
    """Answer that the v2 stack is up."""
    return Health()
