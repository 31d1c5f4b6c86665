"""Every v2 route, gathered on one router."""

from __future__ import annotations

from fastapi import APIRouter

from v2_fastapi.api.routes import auth, customers, health, orders, products, shipping

api_router = APIRouter()
api_router.include_router(auth.router)
api_router.include_router(products.router)
api_router.include_router(customers.router)
api_router.include_router(orders.router)
api_router.include_router(shipping.router)
api_router.include_router(health.router)
