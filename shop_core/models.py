"""The schema both stacks read and write. Alembic's history is generated from it."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates

from shop_core.emails import MAX_EMAIL_LENGTH, email_key
from shop_core.timestamps import utcnow

# Ids are 32-bit integer columns: a larger id exists nowhere, and asking PostgreSQL for one
# fails with an overflow instead of finding nothing. Stock input is held to the same range
# (its column is 64-bit so that stock given back by cancels cannot overflow).
MAX_ID = 2_147_483_647
# The longest username a user can have; a login with a longer one is for no user.
MAX_USERNAME_LENGTH = 64
# An IPv6 address with a zone is at most 45 characters; an address from a proxy header may be
# anything its proxy wrote, and is kept to this.
MAX_ADDRESS_LENGTH = 64

# Stable constraint names, so migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC everywhere, handed out timezone-aware.

    SQLite has no time zones; storing naive UTC on both backends keeps one behaviour.
    """

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Tier(enum.StrEnum):
    STANDARD = "standard"
    GOLD = "gold"
    PLATINUM = "platinum"


class OrderStatus(enum.StrEnum):
    PLACED = "placed"
    CANCELLED = "cancelled"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(MAX_USERNAME_LENGTH), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    scopes: Mapped[str] = mapped_column(String(255), doc="space-separated, as in the token")


# Money is integer cents; 64-bit because a price of up to 1e9 is 1e11 cents.
class Product(Base):
    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("stock >= 0", name="stock_not_negative"),
        CheckConstraint("price_cents > 0", name="price_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    price_cents: Mapped[int] = mapped_column(BigInteger)
    # 64-bit: stock given back by a cancel may pass the 32-bit range an input may reach.
    stock: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # As the client wrote it: clients read back what they stored.
    email: Mapped[str] = mapped_column(String(MAX_EMAIL_LENGTH))
    # `shop_core.emails.email_key(email)`, kept by `_keep_email_key` below. Unbounded here:
    # rows written before the key existed get theirs however long it comes out.
    email_key: Mapped[str] = mapped_column(Text)
    tier: Mapped[str] = mapped_column(String(16), default=Tier.STANDARD.value)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @validates("email")
    def _keep_email_key(self, _attribute: str, email: str) -> str:
        # Every assignment of the address, by either stack or the seed, writes its key
        # with it: no code path can store one without the other.
        self.email_key = email_key(email)
        return email


# One customer per address in any spelling (case, compatibility forms): the index on the
# key is what enforces it under concurrency, on every database alike.
Index("uq_customers_email_key", Customer.email_key, unique=True)


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=OrderStatus.PLACED.value)
    total_cents: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    items: Mapped[list[OrderItem]] = relationship(
        order_by="OrderItem.id", lazy="selectin", cascade="all, delete-orphan"
    )


class OrderItem(Base):
    __tablename__ = "order_items"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_cents: Mapped[int] = mapped_column(BigInteger)


class LoginFailure(Base):
    """One wrong password, kept for the throttle's window (shop_core/login_throttle.py).

    The throttle counts rows here, not in a process's memory, so that every worker process
    and host behind a load balancer sees the same failures.
    """

    __tablename__ = "login_failures"
    __table_args__ = (
        # The throttle's look-ups: the most recent failures of a username, of an address.
        Index("ix_login_failures_username_failed_at", "username", "failed_at"),
        Index("ix_login_failures_client_address_failed_at", "client_address", "failed_at"),
    )

    # 64-bit: ids are never reused, and a long attack can record billions of failures.
    # SQLite numbers rows by itself only in an INTEGER PRIMARY KEY, 64-bit there anyway.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    username: Mapped[str] = mapped_column(String(MAX_USERNAME_LENGTH))
    client_address: Mapped[str] = mapped_column(String(MAX_ADDRESS_LENGTH))
    # Indexed for pruning: rows older than the window are deleted.
    failed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
