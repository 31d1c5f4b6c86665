"""Demo data for an empty database: the three demo users, a catalogue and a few customers."""

from __future__ import annotations

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from shop_core.models import Customer, Product, Tier, User
from shop_core.security import hash_password

DEMO_USERS = {"admin": "read write admin", "clerk": "read write", "viewer": "read"}

_CATALOGUE = [
    ("KB-101", "Mechanical keyboard", 8900),
    ("MS-202", "Wireless mouse", 2950),
    ("MN-303", "27-inch monitor", 27900),
    ("HD-404", "Noise-cancelling headphones", 19900),
    ("WC-505", "HD webcam", 6450),
    ("DS-606", "Standing desk", 44900),
    ("CH-707", "Ergonomic chair", 32900),
    ("LP-808", "Laptop stand", 3990),
    ("CB-909", "USB-C cable 2 m", 1250),
    ("HB-010", "USB-C hub", 4999),
    ("SS-011", "Portable SSD 1 TB", 10900),
    ("MP-012", "Mouse pad XL", 1900),
    ("LM-013", "Desk lamp", 3450),
    ("SP-014", "Bluetooth speaker", 5900),
    ("MC-015", "USB microphone", 8490),
    ("DK-016", "Docking station", 18900),
    ("PW-017", "Power strip", 2490),
    ("CL-018", "Cable clips (10)", 690),
    ("NB-019", "Notebook A5", 450),
    ("PN-020", "Gel pen set", 850),
]
_CUSTOMERS = [
    ("Ada Example", "ada@example.com", Tier.PLATINUM),
    ("Ben Example", "ben@example.com", Tier.GOLD),
    ("Cleo Example", "cleo@example.com", Tier.STANDARD),
    ("Dan Example", "dan@example.com", Tier.STANDARD),
    ("Eve Example", "eve@example.com", Tier.GOLD),
]


def seed_demo_data(engine: Engine, *, password: str) -> bool:
    """Fill an empty database; leave one that has users alone. Returns whether it seeded."""
    with Session(engine) as session, session.begin():
        if session.scalar(select(func.count()).select_from(User)):
            return False
        session.add_all(
            User(username=name, password_hash=hash_password(password), scopes=scopes)
            for name, scopes in DEMO_USERS.items()
        )
        session.add_all(
            Product(sku=sku, name=name, price_cents=price, stock=100)
            for sku, name, price in _CATALOGUE
        )
        session.add_all(
            Customer(name=name, email=email, tier=tier.value) for name, email, tier in _CUSTOMERS
        )
    return True
